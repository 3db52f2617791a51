// CPU time as Linux accounts it in /proc: a process's, split by kind of thread, and the
// machine's load average (printed with a result, to judge how quiet the machine was).
import { readdirSync, readFileSync } from 'node:fs';

/** A process's CPU time, in µs, split as the kernel accounts it per thread. */
export interface ThreadTimes {
  /** The main thread, in JavaScript and Node (user time). */
  user: number;
  /** The main thread in the kernel: accept, reads, writes, epoll, page faults. */
  sys: number;
  /** V8's helper threads (concurrent GC marking, TurboFan compiles) and libuv's. */
  helpers: number;
}

/** CPU time of the process `pid` per kind of thread, in µs, from /proc (Linux). */
export function threadTimes(pid: number): ThreadTimes {
  const tick = 1e6 / 100; // USER_HZ
  const out: ThreadTimes = { user: 0, sys: 0, helpers: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(f[11]) * tick;
    const stime = Number(f[12]) * tick;
    if (Number(tid) === pid) {
      out.user += utime;
      out.sys += stime;
    } else {
      out.helpers += utime + stime;
    }
  }
  return out;
}

/** The machine's load averages over 1, 5 and 15 minutes, as /proc/loadavg gives them (`0.52 0.61 0.70`). */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
