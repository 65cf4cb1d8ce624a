#!/usr/bin/env python3
"""Runs a command (the bench client) and prints the CPU every part of a bench setup used meanwhile.

`baton bench` reports what the Baton servers spend per task; on a machine they share with the
database, Redis, the load balancer, the runners and their scripts, what limits the throughput is
the CPU of all of them together. This reads it from /proc before and after the command:

    cpu_by_process.py --tasks 5000 --group servers:self:101,102 --group runners:self:201 \
        --group scripts:children:201 --group postgresql:tree:55 -- baton bench ...

A group is NAME:HOW:PID[,PID...], HOW one of `self` (the processes' own CPU), `children` (what
their exited and reaped children used: a runner's scripts) or `tree` (the process, its exited
children and the ones alive: PostgreSQL's postmaster and its backends). The command's own CPU is
reported as "bench client". Linux only.
"""

import argparse
import os
import subprocess
import sys

TICK = os.sysconf("SC_CLK_TCK")


def stat(pid):
    """(ppid, own CPU s, reaped children's CPU s) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    fields = s[s.rindex(")") + 2 :].split()
    own = (int(fields[11]) + int(fields[12])) / TICK
    reaped = (int(fields[13]) + int(fields[14])) / TICK
    return int(fields[1]), own, reaped


def live_children(parent):
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = stat(int(entry))
            if st and st[0] == parent:
                total += st[1]
    return total


def measure(how, pids):
    total = 0.0
    for pid in pids:
        st = stat(pid)
        if st is None:
            continue
        if how == "self":
            total += st[1]
        elif how == "children":
            total += st[2]
        else:
            # A child that exits between the two readings moves from "alive" to "reaped" with its
            # whole life, so the difference still counts only what it used in between.
            total += st[1] + st[2] + live_children(pid)
    return total


def group(text):
    try:
        name, how, pids = text.split(":")
        if how not in ("self", "children", "tree"):
            raise ValueError
        return name, how, [int(p) for p in pids.split(",") if p]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: want NAME:self|children|tree:PID[,PID...]")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, required=True, help="tasks the command runs, for the CPU per task")
    parser.add_argument("--group", type=group, action="append", default=[], help="NAME:HOW:PID[,PID...]")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")

    before = [measure(how, pids) for _, how, pids in args.group]
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    after = [measure(how, pids) for _, how, pids in args.group]

    rows = [(name, a - b) for (name, _, _), b, a in zip(args.group, before, after)]
    rows.append(("bench client", usage.ru_utime + usage.ru_stime))
    total = sum(cpu for _, cpu in rows)
    print(f"CPU by process while the bench ran (s, and ms per task of {args.tasks}):")
    for name, cpu in rows + [("total", total)]:
        print(f"  {name:<14} {cpu:8.2f} s  {1000 * cpu / args.tasks:7.3f} ms")
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
