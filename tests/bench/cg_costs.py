#!/usr/bin/env python3
"""Self costs of a callgrind output file, by object and by function.

    cg_costs.py objects FILE [N]        "OBJECT IR" per line, divided by N
    cg_costs.py misses FILE OBJECT [N]  OBJECT's "EVENT VALUE" per line, / N
    cg_costs.py functions FILE OBJECT [N] [TOP]
                                        OBJECT's costliest functions, "FN IR"

Read from the file itself, not from callgrind_annotate's report: that
report leaves out every function below its threshold (99% of the total
by default), and names no object for code inlined from another file (a
header's static inline function), so a sum of its lines misses both.
Here every cost line counts, in the object of the function it is in
(inlined code included), and the cost line after a calls= line (the
callee's inclusive cost) is left out, as self costs must.
"""
import collections
import re
import sys

NAME = re.compile(r"\((\d+)\)(?: (.*))?$")


class Costs:
    def __init__(self, path):
        self.events = []
        self.by_object = collections.defaultdict(lambda: [0] * len(self.events))
        self.by_function = collections.Counter()  # (object, function) -> first event
        names = {"ob": {}, "fl": {}, "fn": {}}

        def name(kind, text):
            # "(id) name" defines id, "(id)" refers to it (name compression).
            m = NAME.match(text)
            if not m:
                return text
            if m.group(2) is not None:
                names[kind][m.group(1)] = m.group(2)
            return names[kind].get(m.group(1), text)

        ob = fn = ""
        after_calls = False
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line:
                    continue
                c = line[0]
                if c.isdigit() or c in "+-*":
                    if after_calls:  # the call's inclusive cost
                        after_calls = False
                        continue
                    values = line.split()[1:]
                    row = self.by_object[ob]
                    for i, v in enumerate(values[: len(row)]):
                        row[i] += int(v)
                    if values:
                        self.by_function[(ob, fn)] += int(values[0])
                elif line.startswith("events:"):
                    self.events = line.split()[1:]
                elif line.startswith("ob="):
                    ob = name("ob", line[3:])
                elif line.startswith("fn="):
                    fn = name("fn", line[3:])
                elif line.startswith(("fl=", "fi=", "fe=")):
                    name("fl", line[3:])
                elif line.startswith(("cfi=", "cfl=")):
                    name("fl", line[4:])
                elif line.startswith("cob="):
                    name("ob", line[4:])
                elif line.startswith("cfn="):
                    name("fn", line[4:])
                elif line.startswith("calls="):
                    after_calls = True

    @staticmethod
    def short(obj):
        return obj.rsplit("/", 1)[-1]


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    what, path = argv[1], argv[2]
    costs = Costs(path)
    if what == "objects":
        n = float(argv[3]) if len(argv) > 3 else 1.0
        totals = collections.Counter()
        for obj, row in costs.by_object.items():
            if row:
                totals[Costs.short(obj)] += row[0]
        for obj, ir in totals.most_common():
            print("%s %.0f" % (obj, ir / n))
    elif what == "misses":
        want, n = argv[3], float(argv[4]) if len(argv) > 4 else 1.0
        row = [0] * len(costs.events)
        for obj, r in costs.by_object.items():
            if Costs.short(obj) == want:
                row = [a + b for a, b in zip(row, r)]
        for event, v in zip(costs.events, row):
            print("%s %.2f" % (event, v / n))
    elif what == "functions":
        want = argv[3]
        n = float(argv[4]) if len(argv) > 4 else 1.0
        top = int(argv[5]) if len(argv) > 5 else 10
        mine = collections.Counter({fn: ir for (obj, fn), ir in costs.by_function.items()
                                    if Costs.short(obj) == want})
        for fn, ir in mine.most_common(top):
            print("%s %.2f" % (fn, ir / n))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
