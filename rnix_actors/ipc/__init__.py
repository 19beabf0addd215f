"""The rnix daemon and its IPC: newline-delimited JSON over a Unix socket (the
shape of the Go reference's). Sits above the public `System` API, beside the CLI.

- `protocol`: framing, error codes, socket/pid paths; `service`: the methods on a `System`;
  `streams`: event streams; `server`: the socket server (threads, testable in-process);
  `client`: the client; `local`: the same API in-process; `daemon`: the background process;
  `control`: start/stop/find it.
"""
