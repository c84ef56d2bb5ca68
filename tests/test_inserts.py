"""nanostudio.inserts writes the row save() would, and calls save() where a signal listens."""

from __future__ import annotations

from django.db import connection
from django.db.models.signals import post_save
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from billing.models import LedgerEntry
from nanostudio import inserts
from studio import catalogue
from studio.models import Job


def _job(user, **fields):
    template = catalogue.find("Sepia", "filters")
    return Job(user=user, kind=Job.Kind.GENERATE, template=template, credits=3, **fields)


def test_a_job_row_is_the_one_save_writes(alice):
    saved = _job(alice, params={"webhook": "https://example.com/hook"})
    saved.save(force_insert=True)
    inserted = _job(alice, params={"webhook": "https://example.com/hook"})
    inserts.insert(inserted)

    assert not inserted._state.adding and inserted.created_at is not None
    first, second = (Job.objects.get(pk=job.pk) for job in (saved, inserted))
    different = {"id", "created_at"}
    assert {k: v for k, v in model_to_dict(first).items() if k not in different} == {
        k: v for k, v in model_to_dict(second).items() if k not in different
    }
    assert second.created_at == inserted.created_at
    assert second.params == {"webhook": "https://example.com/hook"} and second.result == {}


def test_a_database_made_key_is_read_back(alice):
    job = _job(alice)
    inserts.insert(job)
    entry = LedgerEntry(user=alice, kind=LedgerEntry.Kind.DEBIT, amount=-3, units=3, job=job)
    inserts.insert(entry)

    assert entry.pk is not None
    assert LedgerEntry.objects.get(pk=entry.pk).job_id == job.pk


def test_a_listened_to_model_goes_through_save(alice):
    heard = []

    def listener(sender, instance, created, **kwargs):
        heard.append((instance.pk, created))

    post_save.connect(listener, sender=LedgerEntry)
    try:
        entry = LedgerEntry(user=alice, kind=LedgerEntry.Kind.ADJUST, amount=5, reason="test")
        inserts.insert(entry)
    finally:
        post_save.disconnect(listener, sender=LedgerEntry)

    assert heard == [(entry.pk, True)]


def test_a_row_after_a_statement_that_returned_one(alice):
    job = _job(alice)
    inserts.insert(job)
    entry = LedgerEntry(
        user=alice, kind=LedgerEntry.Kind.DEBIT, amount=-3, units=3, job=job, reason="a job"
    )
    answers = []
    for found in (False, True):
        with CaptureQueriesContext(connection) as queries:
            answers.append(inserts.after("SELECT 7 WHERE %s", [found], entry))
        # One round trip on PostgreSQL; SQLite's statements make none.
        assert len(queries) == (1 if connection.vendor == "postgresql" else 1 + found)

    assert answers == [None, (7,)]
    written = LedgerEntry.objects.get(job=job)  # once: the first statement returned no row
    assert (written.user_id, written.kind, written.amount, written.units, written.reason) == (
        alice.pk,
        "debit",
        -3,
        3,
        "a job",
    )
    assert written.created_at == entry.created_at and not entry._state.adding


def test_a_listened_to_model_is_saved_after_the_statement(alice):
    heard = []

    def listener(sender, instance, created, **kwargs):
        heard.append(created)

    post_save.connect(listener, sender=LedgerEntry)
    try:
        entry = LedgerEntry(user=alice, kind=LedgerEntry.Kind.ADJUST, amount=5, reason="test")
        assert inserts.after("SELECT 1", [], entry) == (1,)
    finally:
        post_save.disconnect(listener, sender=LedgerEntry)

    assert heard == [True] and LedgerEntry.objects.filter(pk=entry.pk).exists()
