"""The job journal across fieldkit versions: a job journaled by an earlier release still resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fieldkit.updates.journal import Journal, JournalError


def _old_journal(directory: Path, ssh_key: str | None) -> str:
    job_id = "20261201T120000Z-0123abcd"
    document = {
        "job_id": job_id,
        "charger_address": "ssh://root@10.0.0.7",
        "charger_serial": "SN-1",
        "bundle_path": "/bundles/b.fwbundle",
        "bundle_id": "b",
        "components": ["rootfs"],
        "from_versions": {"rootfs": "2.3.0"},
        "to_versions": {"rootfs": "2.4.0"},
        "ssh_key": ssh_key,  # the SSH key had a field of its own before drivers had options
        "state": "Downloading",
        "history": [],
    }
    directory.mkdir(exist_ok=True)
    (directory / f"{job_id}.json").write_text(json.dumps(document))
    return job_id


def test_a_job_journaled_with_an_ssh_key_field_resumes_with_it_as_a_link_option(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "jobs")
    record = journal.load(_old_journal(journal.directory, "/home/tech/.ssh/charger_key"))
    assert record.link_options == {"ssh_key": "/home/tech/.ssh/charger_key"}
    journal.save(record)
    assert "ssh_key" not in json.loads(journal.path(record.job_id).read_text()), "saved in today's shape"
    assert journal.load(record.job_id).link_options == {"ssh_key": "/home/tech/.ssh/charger_key"}


def test_a_job_journaled_without_a_key_has_no_link_options(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "jobs")
    assert journal.load(_old_journal(journal.directory, None)).link_options == {}


def test_an_interrupted_job_from_an_earlier_release_is_offered_for_resume(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "jobs")
    job_id = _old_journal(journal.directory, "/home/tech/.ssh/charger_key")
    assert [r.job_id for r in journal.unfinished()] == [job_id]


def test_a_journal_with_a_field_of_the_wrong_type_is_unreadable_and_not_offered(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "jobs")
    job_id = _old_journal(journal.directory, None)
    document = json.loads(journal.path(job_id).read_text())
    document["to_versions"] = ["2.4.0"]  # a list where a component -> version map belongs
    journal.path(job_id).write_text(json.dumps(document))
    with pytest.raises(JournalError, match=f"journal of job {job_id} is unreadable.*to_versions"):
        journal.load(job_id)
    assert journal.unfinished() == []
    journal.path(job_id).write_text("[1, 2]")
    with pytest.raises(JournalError, match="JSON object"):
        journal.load(job_id)
