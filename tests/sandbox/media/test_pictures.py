"""What the frames show: the prompt, motion, keyframe images, extensions and loops."""

from __future__ import annotations

import threading

from dreamnodes.sandbox.media import VideoSpec, clear_cache, decode_frames, render_video

from .helpers import fitted, keyframe_png, mean_abs_diff

FOX = "a red fox running through snowy woods at dawn"
CITY = "neon city street in the rain, cinematic"


def _frames(spec: VideoSpec) -> list:  # type: ignore[type-arg]
    return decode_frames(render_video(spec))


def test_two_prompts_give_visibly_different_pictures() -> None:
    fox = _frames(VideoSpec(FOX, 5.0, "16:9", "720p"))
    city = _frames(VideoSpec(CITY, 5.0, "16:9", "720p"))
    for index in (0, 30, 59):
        assert mean_abs_diff(fox[index], city[index]) > 20


def test_frames_move_over_time() -> None:
    frames = _frames(VideoSpec(FOX, 5.0, "16:9", "720p"))
    assert mean_abs_diff(frames[0], frames[30]) > 5
    assert mean_abs_diff(frames[30], frames[59]) > 5


def test_same_spec_gives_identical_bytes_even_when_rendered_again() -> None:
    spec = VideoSpec(FOX, 5.0, "4:3", "720p")
    first = render_video(spec)
    assert render_video(spec) is first  # served from the cache
    clear_cache()
    assert render_video(spec) == first  # and rendering is deterministic


def test_concurrent_renders_of_one_spec_agree() -> None:
    spec = VideoSpec("threads agree", 5.0, "1:1", "720p")
    results: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: results.append(render_video(spec))) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6
    assert all(result is results[0] for result in results)


def test_start_keyframe_is_the_first_frame_then_the_camera_moves() -> None:
    image = keyframe_png(400, 300)  # 4:3 picture in a 16:9 clip: cover-cropped
    frames = _frames(VideoSpec(FOX, 5.0, "16:9", "720p", start_image=image))
    expected = fitted(image, 256, 144)
    assert mean_abs_diff(frames[0], expected) < 6
    assert mean_abs_diff(frames[-1], expected) > 10  # zoomed in, with the caption shown
    plain = _frames(VideoSpec(FOX, 5.0, "16:9", "720p"))
    assert mean_abs_diff(plain[0], expected) > 40


def test_end_keyframe_is_the_last_frame() -> None:
    image = keyframe_png(300, 400, hue="green")
    frames = _frames(VideoSpec(FOX, 5.0, "9:16", "720p", end_image=image))
    expected = fitted(image, 144, 256)
    assert mean_abs_diff(frames[-1], expected) < 6
    assert mean_abs_diff(frames[0], expected) > 30


def test_start_and_end_keyframes_together() -> None:
    start, end = keyframe_png(hue="red"), keyframe_png(hue="green")
    frames = _frames(VideoSpec(FOX, 5.0, "4:3", "720p", start_image=start, end_image=end))
    assert mean_abs_diff(frames[0], fitted(start, 192, 144)) < 6
    assert mean_abs_diff(frames[-1], fitted(end, 192, 144)) < 6


def test_extension_continues_the_source_clip() -> None:
    source = render_video(VideoSpec(CITY, 5.0, "16:9", "720p"))
    source_frames = decode_frames(source)
    frames = _frames(VideoSpec(FOX, 5.0, "16:9", "720p", source_video=source))
    assert mean_abs_diff(frames[0], source_frames[-1]) < 6
    assert mean_abs_diff(frames[0], source_frames[0]) > 5  # it is the last frame, not the first


def test_reverse_extension_leads_up_to_the_source() -> None:
    source = render_video(VideoSpec(CITY, 5.0, "16:9", "720p"))
    source_frames = decode_frames(source)
    frames = _frames(VideoSpec(FOX, 5.0, "16:9", "720p", source_video=source, reverse=True))
    assert mean_abs_diff(frames[-1], source_frames[0]) < 6
    assert mean_abs_diff(frames[0], source_frames[0]) > 20


def test_loop_returns_to_its_first_frame() -> None:
    for image in (None, keyframe_png()):
        frames = _frames(VideoSpec(FOX, 5.0, "16:9", "720p", start_image=image, loop=True))
        assert mean_abs_diff(frames[0], frames[-1]) < 3
        assert mean_abs_diff(frames[0], frames[len(frames) // 2]) > 5
