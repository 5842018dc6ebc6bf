"""Delete completed Jobs older than N hours: a cron-style script. Try --dry-run first.

    python examples/cleanup_jobs.py --hours 24 --all-namespaces --dry-run
    python examples/cleanup_jobs.py --hours 24 --namespace ci

A Job counts as completed when its ``Complete`` condition is True, and its age runs from
``status.completionTime``. Failed Jobs are kept: someone may still want their logs. (A
Job's own ``spec.ttlSecondsAfterFinished`` does this server-side, for Jobs you create.)
Exits 1 if a deletion failed, so cron mails you.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Iterator, List, Optional, Tuple

from kubesync import Api, Client, Conflict, KubeError, NotFound
from kubesync.models.batch_v1 import Job


def completed_at(job: Job) -> Optional[dt.datetime]:
    """When the Job completed, or None if it has not (yet)."""
    status = job.status
    if status is None:
        return None
    for condition in status.conditions or []:
        if condition.type == "Complete" and condition.status == "True":
            return status.completion_time or condition.last_transition_time
    return None


def old_completed_jobs(api: Api[Job], cutoff: dt.datetime) -> Iterator[Tuple[Job, dt.datetime]]:
    """The Jobs (with their completion time) that completed before ``cutoff``."""
    for job in api.list_all():
        done = completed_at(job)
        if done is not None and done < cutoff:
            yield job, done


def age(since: dt.datetime, now: dt.datetime) -> str:
    hours = (now - since).total_seconds() / 3600
    return f"{hours:.1f}h" if hours < 48 else f"{hours / 24:.1f}d"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0,
                        help="delete Jobs that completed more than this long ago (24)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--namespace", "-n", help="the namespace (default: the context's)")
    where.add_argument("--all-namespaces", "-A", action="store_true",
                       help="look in every namespace")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would be deleted; delete nothing")
    args = parser.parse_args(argv)
    if args.hours < 0:
        parser.error("--hours must not be negative")

    now = dt.datetime.now(dt.timezone.utc)
    cutoff = now - dt.timedelta(hours=args.hours)
    found = deleted = failed = 0
    with Client.from_config() as client:
        if args.all_namespaces:
            api: Api[Job] = Api.all(client, Job)
        else:
            api = Api(client, Job, args.namespace or client.default_namespace)
        for job, done in old_completed_jobs(api, cutoff):
            found += 1
            # Objects read from the server always have a name (typed Optional for new ones).
            ns, name = job.metadata.namespace, job.metadata.name or ""
            what = f"{ns}/{name} (completed {age(done, now)} ago)"
            if args.dry_run:
                print(f"would delete {what}")
                continue
            try:
                # Background: the Job goes now, its pods after it. The API's default for
                # batch/v1 Jobs is to orphan the pods, which would leave them behind.
                Api(client, Job, ns).delete(
                    name, propagation_policy="Background",
                    precondition_uid=job.metadata.uid,  # not a new Job of the same name
                )
                print(f"deleted {what}")
                deleted += 1
            except NotFound:
                print(f"already gone: {what}")
            except Conflict:  # the uid precondition: a new Job took the name meanwhile
                print(f"replaced by a newer Job meanwhile, kept: {what}")
            except KubeError as e:
                failed += 1
                print(f"could not delete {what}: {e}", file=sys.stderr)
    if args.dry_run:
        print(f"{found} completed Job(s) older than {args.hours:g}h would be deleted (dry run)")
    else:
        print(f"{deleted} completed Job(s) older than {args.hours:g}h deleted")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
