"""Reading and checking the OpenCV FileStorage XML label files."""

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
