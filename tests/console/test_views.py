"""The console's views, driven through the page in headless Chromium against the real service.

The model is untrained (every face is about equally similar to every other), so these tests look
at names, labels and requests, never at similarity values.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.console.conftest import ConsolePage, LiveService


def _choose_photo(console: ConsolePage, picker: str, photo: Path) -> None:
    console.page.set_input_files(f"#{picker}-file", photo)


def test_enrolled_face_is_named_on_its_box_when_another_photo_is_identified(
    console: ConsolePage, live_service: LiveService, faces_dir: Path
) -> None:
    page = console.page
    console.open(live_service.admin_key)
    console.tab("Enrol")
    _choose_photo(console, "enroll-photo", faces_dir / "barack_obama/3.jpg")
    expect(page.locator("#enroll-selection")).to_contain_text("Face 1 of 1 chosen")
    page.fill("#enroll-subject", "Barack Obama")
    page.fill("#enroll-collection", "presidents")
    page.click("#enroll-submit")
    expect(page.locator("#enroll-messages")).to_contain_text("New subject “Barack Obama” created")
    console.shot("enrol")
    console.tab("Identify")
    page.fill("#identify-collection", "presidents")
    _choose_photo(console, "identify-photo", faces_dir / "barack_obama/4.jpg")
    expect(page.locator("#identify-stage canvas")).to_be_visible()

    page.click("#identify-submit")

    expect(page.locator("#identify-stage svg .face.match text")).to_contain_text("Barack Obama")
    expect(page.locator("#identify-result table")).to_contain_text("Barack Obama")
    console.shot("identify")


def test_threshold_slider_relabels_a_face_as_unknown_without_a_new_request(
    console: ConsolePage, live_service: LiveService, faces_dir: Path
) -> None:
    page = console.page
    live_service.enrol(faces_dir / "barack_obama/3.jpg", subject="Barack Obama", collection="slider")
    console.open(live_service.admin_key)
    page.fill("#identify-collection", "slider")
    _choose_photo(console, "identify-photo", faces_dir / "barack_obama/4.jpg")
    expect(page.locator("#identify-stage canvas")).to_be_visible()
    page.click("#identify-submit")
    label = page.locator("#identify-stage svg .face text")
    expect(label).to_contain_text("Barack Obama")

    page.focus("#threshold-slider")
    page.keyboard.press("End")

    expect(page.locator("#threshold-slider")).to_have_value("1")
    expect(label).to_contain_text("unknown")
    expect(page.locator("#identify-stage svg .face.unknown")).to_have_count(1)
    assert len(console.requests_to("/identify")) == 1
    console.shot("identify-threshold-raised")


def test_detect_only_mode_boxes_every_face_of_a_group_photo(
    console: ConsolePage, live_service: LiveService, faces_dir: Path
) -> None:
    page = console.page
    console.open(live_service.admin_key)
    page.check("input[name=mode][value=detect]")
    _choose_photo(console, "identify-photo", faces_dir / "_groups/2_two_people.jpg")
    expect(page.locator("#identify-stage canvas")).to_be_visible()

    page.click("#identify-submit")

    expect(page.locator("#identify-stage svg .face")).to_have_count(2)
    expect(page.locator("#identify-result")).to_contain_text("2 faces found")
    assert console.requests_to("/detect")
    assert not console.requests_to("/identify")
    page.locator("#identify-stage svg .face").nth(1).click()
    expect(page.locator("#identify-result .face-detail")).to_contain_text("Detection probability")
    console.shot("detect-only")


def test_clicked_face_of_a_group_photo_is_enrolled_from_a_crop(
    console: ConsolePage, live_service: LiveService, faces_dir: Path
) -> None:
    page = console.page
    console.open(live_service.admin_key)
    console.tab("Enrol")
    _choose_photo(console, "enroll-photo", faces_dir / "_groups/2_two_people.jpg")
    faces = page.locator("#enroll-stage svg .face")
    expect(faces).to_have_count(2)
    faces.nth(1).click()
    page.fill("#enroll-subject", "Second of two")
    page.fill("#enroll-collection", "group-crop")

    page.click("#enroll-submit")

    expect(page.locator("#enroll-messages")).to_contain_text("Sent a crop around the chosen face")
    expect(faces.nth(1)).to_contain_text("Second of two ✓")
    with live_service.client() as client:
        subjects = client.get("/subjects", params={"collection": "group-crop"}).json()
    assert [subject["name"] for subject in subjects["items"]] == ["Second of two"]
    console.shot("enrol-group-crop")


def test_enrol_rejection_shows_the_message_code_and_details(
    console: ConsolePage, live_service: LiveService, faces_dir: Path
) -> None:
    page = console.page
    console.open(live_service.admin_key)
    console.tab("Enrol")
    _choose_photo(console, "enroll-photo", faces_dir / "joe_biden/1.jpg")
    expect(page.locator("#enroll-selection")).to_contain_text("Face 1 of 1 chosen")
    page.fill("#enroll-subject", "Joe Biden")
    page.fill("#enroll-collection", "not a valid name!")

    page.click("#enroll-submit")

    error = page.locator("#enroll-messages [role=alert]")
    expect(error).to_contain_text("The face was not enrolled")
    expect(error.locator("code")).to_have_text("VALIDATION_ERROR")
    expect(error.locator("dl.details")).to_be_visible()


def test_verify_shows_similarity_threshold_and_verdict_for_two_photos(
    console: ConsolePage, live_service: LiveService, faces_dir: Path
) -> None:
    page = console.page
    console.open(live_service.admin_key)
    console.tab("Verify")
    _choose_photo(console, "verify-photo-a", faces_dir / "barack_obama/1.jpg")
    _choose_photo(console, "verify-photo-b", faces_dir / "joe_biden/2.jpg")
    expect(page.locator("#verify-stage-b canvas")).to_be_visible()

    page.click("#verify-submit")

    result = page.locator("#verify-result")
    expect(result).to_contain_text("Similarity")
    expect(result).to_contain_text("Threshold")
    expect(result).to_contain_text("same_person")
    expect(page.locator("#verify-stage-a svg .face")).to_have_count(1)
    expect(page.locator("#verify-stage-b svg .face")).to_have_count(1)
    console.shot("verify")


def test_deleting_a_subject_in_the_gallery_shows_the_receipt_and_removes_it(
    console: ConsolePage, live_service: LiveService, faces_dir: Path
) -> None:
    page = console.page
    live_service.enrol(faces_dir / "joe_biden/1.jpg", subject="Joe Biden", collection="gallery-test")
    live_service.enrol(faces_dir / "barack_obama/4.jpg", subject="Barack Obama", collection="gallery-test")
    console.open(live_service.admin_key)
    console.tab("Gallery")
    page.get_by_role("button", name="gallery-test").click()
    page.fill("#subjects-q", "BIDEN")
    page.click("#subjects-search button")
    subjects = page.locator("#subjects-list")
    expect(subjects).to_contain_text("Joe Biden")
    expect(subjects).not_to_contain_text("Barack Obama")
    subjects.get_by_role("button", name="Joe Biden").click()
    expect(page.locator("#subject-detail")).to_contain_text("Photos are never stored")
    console.shot("gallery-subject")

    page.get_by_role("button", name="Delete subject…").click()
    page.get_by_role("button", name="Delete for good").click()

    receipt = page.locator("#gallery-messages")
    expect(receipt).to_contain_text("Deleted “Joe Biden” for good")
    expect(receipt.locator("dl.receipt")).to_contain_text("Faces deleted")
    expect(subjects).to_contain_text("No subject’s name contains “BIDEN”")
    with live_service.client() as client:
        left = client.get("/subjects", params={"collection": "gallery-test"}).json()
    assert [subject["name"] for subject in left["items"]] == ["Barack Obama"]
    console.shot("gallery-deleted")
