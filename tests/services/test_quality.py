"""Which face an enrolment stores: the widest confident one; bystanders and faces below the gate are
ignored with their reason; comparable usable faces are MULTIPLE_FACES unless the largest is asked for."""

from __future__ import annotations

import pytest

from app.engine.faces import DetectedFace
from app.engine.quality import FaceQuality
from app.errors import FaceQualityError, MultipleFacesError, NoFaceDetectedError
from app.services.quality import AnalysedFace, MultipleFacesPolicy, QualityLimits, choose_enrolment_face

LIMITS = QualityLimits(
    min_face_px=40,
    min_detection_probability=0.95,
    min_sharpness=4.0,
    max_roll_degrees=35.0,
    max_yaw_offset=1.3,
    min_brightness=40.0,
    max_brightness=220.0,
    max_clipped_fraction=0.25,
)
GOOD = FaceQuality(sharpness=50.0, roll_degrees=2.0, yaw_offset=0.1, brightness=120.0, clipped_fraction=0.0)


def analysed(width: float, *, probability: float = 0.999, quality: FaceQuality = GOOD, x: float = 0) -> AnalysedFace:
    return AnalysedFace(
        DetectedFace(box=(x, 0, x + width, width * 1.2), landmarks=(), probability=probability), quality
    )


def choose(faces: list[AnalysedFace], *, largest: bool = False) -> tuple[AnalysedFace, list[tuple[str, float]]]:
    policy = MultipleFacesPolicy.LARGEST if largest else MultipleFacesPolicy.REJECT
    choice = choose_enrolment_face(faces, limits=LIMITS, bystander_ratio=0.5, on_multiple_faces=policy)
    return choice.face, [(item.reason, item.face.face.width) for item in choice.ignored]


def test_the_widest_face_is_stored_and_narrower_ones_under_half_its_width_are_bystanders() -> None:
    main, ignored = choose([analysed(240), analysed(110, x=300), analysed(54, x=500)])

    assert main.face.width == 240
    assert ignored == [("bystander", 110), ("bystander", 54)]


def test_a_face_of_comparable_size_makes_the_photo_multiple_faces() -> None:
    with pytest.raises(MultipleFacesError) as refused:
        choose([analysed(240), analysed(130, x=300)])

    assert len(refused.value.details["faces"]) == 2


def test_on_multiple_faces_largest_keeps_the_widest_and_ignores_the_others() -> None:
    main, ignored = choose([analysed(240), analysed(200, x=300)], largest=True)

    assert main.face.width == 240
    assert ignored == [("not_largest", 200)]


def test_a_comparable_face_below_the_gate_is_ignored_not_counted() -> None:
    blurred = FaceQuality(sharpness=1.0, roll_degrees=0.0, yaw_offset=0.0, brightness=120.0, clipped_fraction=0.0)

    _, ignored = choose([analysed(240), analysed(200, x=300, quality=blurred)])

    assert ignored == [("quality", 200)]


def test_low_confidence_detections_are_ignored_and_never_chosen() -> None:
    main, ignored = choose([analysed(300, probability=0.6), analysed(200, x=400)])

    assert main.face.width == 200
    assert ignored == [("low_probability", 300)]


def test_a_main_face_that_fails_the_gate_is_refused_naming_its_first_rule_and_all_of_them() -> None:
    dark_and_blurred = FaceQuality(
        sharpness=1.0, roll_degrees=0.0, yaw_offset=0.0, brightness=20.0, clipped_fraction=0.0
    )

    with pytest.raises(FaceQualityError) as refused:
        choose([analysed(240, quality=dark_and_blurred)])

    details = refused.value.details
    assert (details["rule"], details["value"], details["limit"]) == ("min_brightness", 20.0, 40.0)
    assert [failure["rule"] for failure in details["failures"]] == ["min_brightness", "min_sharpness"]


def test_a_face_under_the_minimum_size_is_refused() -> None:
    with pytest.raises(FaceQualityError) as refused:
        choose([analysed(30)])

    assert refused.value.details["rule"] == "min_face_px"


def test_no_face_is_no_face_detected() -> None:
    with pytest.raises(NoFaceDetectedError):
        choose([])
