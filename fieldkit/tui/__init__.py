"""The technician's Textual app. Only this package imports Textual."""
