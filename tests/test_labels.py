"""Reading and checking the OpenCV FileStorage XML label files."""

import os
import re

import pytest

from coreLib.data import labels
from coreLib.errors import ActrecogError
from coreLib.data.labels import Interval

OPENCV_FILE = b"""<?xml version="1.0"?>
<opencv_storage>
<label>
  <_>
    <pos>11</pos>
    <len>14</len></_>
  <_>
    <pos>40</pos>
    <len>6</len></_>
</label>
</opencv_storage>
"""


def test_reads_items_in_file_order():
    assert labels.parse_label_xml(OPENCV_FILE) == (Interval(11, 14), Interval(40, 6))


def test_enclosing_element_name_does_not_matter():
    for container in (b"frames", b"seq", b"x_y"):
        data = OPENCV_FILE.replace(b"label>", container + b">")
        assert labels.parse_label_xml(data) == (Interval(11, 14), Interval(40, 6))
    nested = (b"<opencv_storage><a><b><_><pos>1</pos><len>2</len></_></b></a>"
              b"<_><pos> 5 </pos><len>+3</len></_></opencv_storage>")
    assert labels.parse_label_xml(nested) == (Interval(1, 2), Interval(5, 3))


def test_nested_sequence_items_are_not_items_themselves():
    data = (b"<opencv_storage><label><_><_><pos>1</pos><len>2</len></_>"
            b"<_><pos>4</pos><len>2</len></_></_></label></opencv_storage>")
    assert labels.parse_label_xml(data) == (Interval(1, 2), Interval(4, 2))


@pytest.mark.parametrize("data, message", [
    (b"<opencv_storage><label><_><pos>1</pos>", "malformed XML"),
    (b"\xff\xfe garbage", "malformed XML"),
    (b"<opencv_storage><label><_><len>3</len></_></label></opencv_storage>",
     "item 0 has no <pos>"),
    (b"<opencv_storage><label><_><pos>1</pos><len>3</len></_><_><pos>3</pos></_>"
     b"</label></opencv_storage>", "item 1 has no <len>"),
    (b"<opencv_storage><label><_><pos>-1</pos><len>3</len></_></label></opencv_storage>",
     "item 0 <pos> is negative"),
    (b"<opencv_storage><label><_><pos>1.5</pos><len>3</len></_></label></opencv_storage>",
     "<pos> is '1.5', not an integer"),
    (b"<opencv_storage><label><_><pos>1</pos><len></len></_></label></opencv_storage>",
     "<len> is '', not an integer"),
    (b"<opencv_storage><label><_><pos>1</pos><len>0</len></_></label></opencv_storage>",
     "<len> is 0, must be at least 1"),
    (b"<opencv_storage><label><_><pos>1</pos><pos>2</pos><len>3</len></_></label>"
     b"</opencv_storage>", "has 2 <pos> elements"),
    (b"<opencv_storage><label></label></opencv_storage>", "no <_> items"),
])
def test_bad_files_name_the_file_and_the_problem(data, message):
    with pytest.raises(ActrecogError, match="^some/file.xml: .*" + re.escape(message)):
        labels.parse_label_xml(data, "some/file.xml")


def test_interval_past_the_last_frame_fails_or_is_clipped():
    intervals = (Interval(0, 3), Interval(8, 4), Interval(12, 2))
    with pytest.raises(ActrecogError, match=r"^f.xml: item 1 \(pos 8, len 4\) runs past "
                                            r"the last frame 9 \(use --clip-intervals"):
        labels.check_intervals(intervals, 10, "f.xml")
    kept, warnings = labels.check_intervals(intervals, 10, "f.xml", clip=True)
    assert kept == (Interval(0, 3), Interval(8, 2))
    assert len(warnings) == 2
    assert warnings[0].endswith("clipped to len 2") and warnings[1].endswith("dropped")
    assert labels.check_intervals(intervals[:2], 12, "f.xml") == (intervals[:2], [])


def test_read_label_file(tmp_path):
    path = tmp_path / "asl-blue.xml"
    path.write_bytes(OPENCV_FILE)
    assert labels.read_label_file(str(path)) == (Interval(11, 14), Interval(40, 6))
    with pytest.raises(ActrecogError, match="cannot read label file"):
        labels.read_label_file(str(tmp_path / "missing.xml"))


ACTIONS = ("ui-swipe", "asl-z", "ui-click")


def test_label_file_xml_writes_both_item_forms():
    assert labels.label_file_xml([(11, 14), (40, 6)]).encode() == OPENCV_FILE
    text = labels.label_file_xml([(120, 24, "ui-swipe"), (3, 6, "asl-z")])
    assert text == ('<?xml version="1.0"?>\n<opencv_storage>\n<label>\n'
                    "  <_>\n    <pos>120</pos>\n    <len>24</len>\n"
                    "    <action>ui-swipe</action></_>\n"
                    "  <_>\n    <pos>3</pos>\n    <len>6</len>\n"
                    "    <action>asl-z</action></_>\n</label>\n</opencv_storage>\n")
    # Positions read as from any label file; the actions with them.
    assert labels.parse_label_xml(text.encode()) == (Interval(120, 24), Interval(3, 6))
    assert labels.parse_action_label_xml(text.encode(), ACTIONS) == (
        labels.ActionInterval(120, 24, "ui-swipe"), labels.ActionInterval(3, 6, "asl-z"))
    with pytest.raises(ValueError, match="is not"):
        labels.label_file_xml([(1, 2, "a", "b")])


def test_opencv_reads_what_the_writer_writes(tmp_path):
    import cv2
    path = str(tmp_path / "seq.xml")
    labels.write_label_file(path, [(120, 24, "ui-swipe"), (150, 6, "ui-click")])
    assert os.listdir(tmp_path) == ["seq.xml"]  # no temporary left behind
    storage = cv2.FileStorage(path, cv2.FILE_STORAGE_READ)
    node = storage.getNode("label")
    read = [(int(node.at(i).getNode("pos").real()), int(node.at(i).getNode("len").real()),
             node.at(i).getNode("action").string()) for i in range(node.size())]
    storage.release()
    assert read == [(120, 24, "ui-swipe"), (150, 6, "ui-click")]
    assert labels.read_action_label_file(path, ACTIONS) == (
        labels.ActionInterval(120, 24, "ui-swipe"), labels.ActionInterval(150, 6, "ui-click"))


def _item(pos, length, action=None):
    extra = "" if action is None else f"<action>{action}</action>"
    return f"<_><pos>{pos}</pos><len>{length}</len>{extra}</_>"


EXPECTED = ("; TestDetection label items name their action: "
            "<_><pos>..</pos><len>..</len><action>NAME</action></_>")


def _file(*items):
    return f"<opencv_storage><label>{''.join(items)}</label></opencv_storage>".encode()


@pytest.mark.parametrize("data, message", [
    (_file(_item(0, 4, "asl-z"), _item(9, 5)), "item 1 has no <action>" + EXPECTED),
    (_file(_item(0, 4, " ")), "item 0 has an empty <action>" + EXPECTED),
    (_file("<_><pos>0</pos><len>4</len><action>a</action><action>b</action></_>"),
     "item 0 has 2 <action> elements" + EXPECTED),
    (_file(_item(0, 4, "asl-q")),
     "item 0 names unknown action 'asl-q' (known: asl-z, ui-click, ui-swipe)"),
    (_file(_item(20, 5, "asl-z"), _item(0, 4, "ui-click"), _item(3, 6, "ui-swipe")),
     "items 1 (pos 0, len 4) and 2 (pos 3, len 6) overlap"),
    (_file(_item(0, 0, "asl-z")), "item 0 <len> is 0, must be at least 1"),
])
def test_bad_action_labels_end_in_one_line_naming_the_file(data, message):
    with pytest.raises(ActrecogError) as caught:
        labels.parse_action_label_xml(data, ACTIONS, "TestDetection/lam.xml")
    text = str(caught.value)
    assert text == f"TestDetection/lam.xml: {message}" and "\n" not in text


def test_touching_action_items_do_not_overlap(tmp_path):
    path = tmp_path / "lam.xml"
    path.write_bytes(_file(_item(4, 6, "ui-click"), _item(0, 4, "asl-z")))
    assert labels.read_action_label_file(str(path), ACTIONS) == (
        labels.ActionInterval(4, 6, "ui-click"), labels.ActionInterval(0, 4, "asl-z"))
    with pytest.raises(ActrecogError, match="missing.xml: cannot read label file"):
        labels.read_action_label_file(str(tmp_path / "missing.xml"), ACTIONS)
