"""Running an update job inside the app: the engine's events become messages for the screen showing it."""

from __future__ import annotations

from textual.message_pump import MessagePump

from fieldkit.errors import FieldkitError, TransportError
from fieldkit.tui.messages import TransferProgressed, UpdateFailed, UpdateFinished
from fieldkit.updates.engine import JobCancelledError, UpdateJob


async def drive(job: UpdateJob, address: str, target: MessagePump, running: dict[str, UpdateJob]) -> None:
    """Run ``job`` to its end, posting every event to ``target``; the job lets go of its charger afterwards.

    While it runs it is listed in ``running`` (the app's), so quitting asks first.
    """
    running[job.record.job_id] = job
    try:
        async for event in job.run():
            target.post_message(TransferProgressed(address, event))
        target.post_message(UpdateFinished(address, job.record))
    except JobCancelledError as exc:
        target.post_message(UpdateFailed(address, f"{exc.message} — resume it from Recovery (4)"))
    except TransportError as exc:
        target.post_message(
            UpdateFailed(address, f"interrupted in {job.record.state}: {exc.message} — fix the link, then resume (4)")
        )
    except FieldkitError as exc:
        target.post_message(UpdateFailed(address, exc.one_line(), resumable=False))
    finally:
        running.pop(job.record.job_id, None)
        job.close()
