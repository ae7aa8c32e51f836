#!/usr/bin/env python3
r"""Counts the atomic read-modify-writes one operation of `benches/instructions.rs` executes.

On x86-64 an uncontended locked instruction (`lock cmpxchg`, `lock xadd`, a SeqCst fence)
costs tens of cycles whatever else the core does, so their count says more about an
operation's cost than its instruction count. Run the loop twice under callgrind with
per-instruction counts, then give both outputs of the worker thread to this script with the
binary; it matches the executed addresses against the binary's locked instructions and
divides the difference by the difference in jobs:

    BINARY=target/release/deps/instructions-...   # as `cargo bench --bench instructions --no-run` prints
    for n in 10000 30000; do
        valgrind --tool=callgrind --dump-instr=yes --separate-threads=yes \
            --callgrind-out-file=/tmp/rmw$n $BINARY lane $n
    done
    python3 benches/count_atomics.py $BINARY /tmp/rmw10000-02 /tmp/rmw30000-02 20000

It prints the count per job and where each locked instruction is. Only the binary's own code
is counted (the C library's allocator is not), and only x86-64 is understood.
"""

import collections
import re
import signal
import subprocess
import sys

LOCKED = re.compile(r"^(lock |xchg .*\(|mfence)")
SYMBOL = re.compile(r"^([0-9a-f]+) <(.*)>:$")
INSTRUCTION = re.compile(r"^\s+([0-9a-f]+):\s+(.*)$")
COST = re.compile(r"^(0x[0-9a-f]+|[+-]\d+|\*)\s+\S+\s+(\d+)$")
OBJECT = re.compile(r"^c?ob=\((\d+)\)(?: (.*))?$")


def locked_instructions(binary):
    """The address, function and text of every locked instruction in `binary`."""
    listing = subprocess.run(
        ["objdump", "-d", "-C", "--no-show-raw-insn", binary],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found, function = {}, None
    for line in listing.splitlines():
        symbol = SYMBOL.match(line)
        if symbol:
            function = symbol.group(2)
            continue
        instruction = INSTRUCTION.match(line)
        if instruction and LOCKED.match(instruction.group(2)):
            found[int(instruction.group(1), 16)] = (function, instruction.group(2))
    return found


def executions(profile, binary, addresses):
    """How often each of `addresses` ran in `binary`, from a callgrind profile made with
    `--dump-instr=yes`.

    Callgrind names each object once, on the first `ob=` or `cob=` line that uses it, and
    by number after that. Addresses are absolute or relative to the line before; a line after
    `calls=` is the cost of a call, not of the instruction there, and is skipped.
    """
    lines = open(profile, encoding="utf-8", errors="replace").read().splitlines()
    ours = set()
    for line in lines:
        named = OBJECT.match(line)
        if named and named.group(2) and named.group(2).endswith(binary.split("/")[-1]):
            ours.add(named.group(1))
    counts, address, in_ours, after_call = collections.Counter(), 0, False, False
    for line in lines:
        if line.startswith("ob="):
            in_ours = OBJECT.match(line).group(1) in ours
            continue
        if line.startswith("calls="):
            after_call = True
            continue
        cost = COST.match(line)
        if not cost:
            continue
        step = cost.group(1)
        if step.startswith("0x"):
            address = int(step, 16)
        elif step != "*":
            address += int(step)
        if after_call:
            after_call = False
        elif in_ours and address in addresses:
            counts[address] += int(cost.group(2))
    return counts


def main():
    # Piped into `head`, stop quietly.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    binary, fewer, more, jobs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    locked = locked_instructions(binary)
    before = executions(fewer, binary, locked)
    after = executions(more, binary, locked)
    per_site = collections.Counter()
    for address, (function, text) in locked.items():
        ran = after[address] - before[address]
        if ran > 0:
            per_site[(function, text)] += ran
    total = sum(per_site.values())
    print(f"{total / jobs:.2f} atomic read-modify-writes per job")
    for (function, text), ran in per_site.most_common():
        if ran / jobs >= 0.01:
            print(f"{ran / jobs:6.2f}  {text[:36]:36}  {function[:100]}")


if __name__ == "__main__":
    main()
