"""Pseudonyms for subject ids in redacted evidence.

``--redact`` keeps images out of the evidence and replaces each subject id (a DICOM
PatientID, a NIfTI file's subject id) by ``subject-`` and the first 12 hex digits of its
SHA-256: whoever holds the id list can still match rows, nobody else can read them. It is
pseudonymisation, not anonymisation: a short or guessable id can be found by trying them all."""

from __future__ import annotations

import hashlib


def pseudonym(subject_id: str) -> str:
    return "subject-" + hashlib.sha256(subject_id.encode()).hexdigest()[:12]
