"""De-identification of the DICOM files medface writes: DICOM PS3.15 Annex E, the Basic
Application Level Confidentiality Profile.

The profile is applied by `dicom-anonymizer <https://github.com/KitwareMedical/dicom-anonymizer>`_
(KitwareMedical; MIT licence), pinned in ``pyproject.toml``. It was chosen over the alternatives
because its action tables are generated from PS3.15 Table E.1-1 itself (edition 2026c is used
here) and it applies the table's actions (D, Z, X, U and their combinations) as the standard
names them. ``deid`` applies its own recipe (it removes every attribute whose name contains
"UID" or ends in "ID", which breaks the series) and ``dicognito`` replaces identifiers by
invented ones with its own list; neither is the basic profile.

What the writer (:func:`medface.io.write_dicom_series`) emits, and what the profile does:

=================================================  ======  ==================================================
attribute                                          E.1-1   in the written files
=================================================  ======  ==================================================
Patient's Name (0010,0010)                         Z       the pseudonym passed to the writer (a dummy value,
                                                           as Z allows; default ``SYNTHETIC^PHANTOM``)
Patient ID (0010,0020)                             Z       the pseudonym passed (default ``SYNTHETIC``)
Patient's Birth Date (0010,0030), Sex (0010,0040)  Z       empty / the dummy date 00010101
Study Date, Study Time (0008,0020/0030)            Z       the dummy date 00010101 and time 000000.00
Accession Number (0008,0050), Referring            Z       empty
Physician's Name (0008,0090), Study ID (0020,0010)
Series Description (0008,103E)                     X       kept as the caller gave it: medface's own text
                                                           (as with the Clean Descriptions option); pass no
                                                           patient information in it
Study, Series, SOP Instance, Frame of Reference    U       medface's own UIDs, derived from a hash of the
and Media Storage SOP Instance UIDs                        voxels and geometry (or ``uid_seed``): they are
                                                           replacement UIDs already, never the source's
private attributes                                 X       none are written; any would be removed
=================================================  ======  ==================================================

Everything geometry and units need is not in Table E.1-1 and stays as written: Image Position
and Orientation (Patient), Pixel Spacing, Slice Thickness, Spacing Between Slices, Slice
Location, Rows, Columns, rescale slope, intercept and type, Modality, SOP Class UID. Each file
then says what was done: Patient Identity Removed (0012,0062) ``YES``, De-identification Method
(0012,0063) and De-identification Method Code Sequence (0012,0064) with code 113100 (DCM, "Basic
Application Confidentiality Profile").
"""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = ["PROFILE", "TABLE_EDITION", "deidentify_file"]

TABLE_EDITION = "2026c"
#: De-identification Method (0012,0063): one value per line (LO values hold at most 64 characters)
PROFILE = (f"DICOM PS3.15 E.1-1 Basic Profile ({TABLE_EDITION})", "applied by dicom-anonymizer 2.1.0",
           "UIDs replaced by medface", "Series Description written by medface")


@functools.lru_cache(maxsize=1)
def _table() -> dict:
    from dicomanonymizer.simpledicomanonymizer import initialize_actions

    return initialize_actions(f"dicomfields_{TABLE_EDITION}")


def deidentify_file(path, *, patient_name: str, patient_id: str) -> None:
    """Apply the basic profile to the DICOM file at ``path`` in place (see the module notes).

    The UIDs in the file, and its Series Description, are medface's own and are kept;
    ``patient_name`` and ``patient_id`` are written after the profile as the pseudonyms.
    """
    import pydicom
    from dicomanonymizer.simpledicomanonymizer import anonymize_dataset, keep

    path = Path(path)
    dataset = pydicom.dcmread(path)
    own = {(e.tag.group, e.tag.element): keep for e in (*dataset.file_meta, *dataset) if e.VR == "UI"}
    own[(0x0008, 0x103E)] = keep
    anonymize_dataset(dataset, own, delete_private_tags=True, base_rules_gen=lambda: dict(_table()))
    dataset.PatientName = patient_name
    dataset.PatientID = patient_id
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = list(PROFILE)
    dataset.DeidentificationMethodCodeSequence = [_code("113100", "Basic Application Confidentiality Profile")]
    dataset.save_as(path, enforce_file_format=True)


def _code(value: str, meaning: str):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item
