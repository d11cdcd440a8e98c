#pragma once
// systemd's readiness protocol (sd_notify(3)), spoken directly: a datagram to $NOTIFY_SOCKET.
// Does nothing when the daemon was not started by systemd with Type=notify.

namespace elafros {

// Reads $NOTIFY_SOCKET and removes it from the environment, so that children (runc) do not
// inherit it. Call first thing in main.
void take_notify_socket();
// Sends a state such as "READY=1" or "STOPPING=1". Returns false when not under systemd.
bool notify_systemd(const char* state);

}  // namespace elafros
