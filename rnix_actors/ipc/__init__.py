"""The rnix daemon and its IPC: newline-delimited JSON over a Unix socket (DESIGN §2, §9 of
the Go reference). Sits above the public `System` API, beside the CLI.

- `protocol`: framing, error codes, socket/pid paths; `service`: the methods on a `System`;
  `streams`: event streams; `server`: the socket server (threads, testable in-process);
  `client`: the client; `local`: the same API in-process; `daemon`: the background process;
  `control`: start/stop/find it.
"""
