"""How far a session's ledger is from its steady state, for bench_servers.sh.

    ledger_state.py ROOT counters   the byte offsets of the header's
                                    ledger_reclaimed and ledger_full
                                    counters: "RECLAIMED FULL" (the script
                                    reads them itself, with od, per run)
    ledger_state.py ROOT fill SEG   "CAPACITY NEVER_USED" of the segment SEG:
                                    the ledger's entries and how many of
                                    them no socket has had yet (index key 0)

A new connection takes a never-used entry near its inode's hash while its
probe window has one (touching fresh shared pages), and reclaims a released
entry once it has none: a long-running server's steady state. ROOT is the
checkout (the layout comes from its include/sockshim/layout.h, through
tests/integration/segment.py). Reads the segment, writes nothing.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import segment  # noqa: E402  (after the path it lives on)


def fill(lay, path):
    with open(path, "rb") as f:
        head = f.read(lay["SIZEOF_H"])
        if len(head) < lay["SIZEOF_H"] or \
                segment.get(lay, "H.magic", head) != lay["SOCKSHIM_MAGIC"] or \
                segment.get(lay, "H.layout_version", head) != lay["SOCKSHIM_LAYOUT_VERSION"]:
            raise SystemExit("ledger_state: %s: not a layout-%d sockshim segment"
                             % (path, lay["SOCKSHIM_LAYOUT_VERSION"]))
        cap = segment.get(lay, "H.ledger_capacity", head)
        koff = segment.get(lay, "H.keys_offset", head)
        ksz = lay["SIZEOF_K"]
        f.seek(koff)
        keys = f.read(cap * ksz)
    if not cap or len(keys) != cap * ksz:
        raise SystemExit("ledger_state: %s: ledger index cut short (%d of %d bytes)"
                         % (path, len(keys), cap * ksz))
    unused = sum(1 for i in range(cap) if segment.get(lay, "K.inode", keys, i * ksz) == 0)
    return cap, unused


def main(argv):
    if len(argv) < 3 or argv[2] not in ("counters", "fill") or (argv[2] == "fill") != (len(argv) == 4):
        raise SystemExit("usage: ledger_state.py ROOT counters | ledger_state.py ROOT fill SEGMENT")
    lay = segment.layout(argv[1])
    if argv[2] == "counters":
        print(lay["H.ledger_reclaimed"][0], lay["H.ledger_full"][0])
    else:
        print(*fill(lay, argv[3]))


if __name__ == "__main__":
    main(sys.argv)
