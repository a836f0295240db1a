// costore-native-host: the native messaging host of the costore browser
// extension (Chrome/Chromium and Firefox).
//
// The browser starts it for the extension and speaks to it over stdin and
// stdout (native messaging framing, framing.h; the messages, protocol.h).
// Chrome passes the caller as argv[1] ("chrome-extension://<id>/"); Firefox
// passes the manifest's path and the extension's id as argv[1] and argv[2].
// It exits when the browser closes its stdin.
//
// The daemon identifies this process (its executable) as the app of every
// principal the host acts for: the host acts for the browser, and the
// extension names the web origin.
//
// Options (for tests and debugging; browsers pass none of them):
//   --no-http      never offer the loopback endpoint: chunked messages only
#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "native-host/framing.h"
#include "native-host/host.h"

using costore::native_host::ClientBackend;
using costore::native_host::Frame;
using costore::native_host::FrameReader;
using costore::native_host::FrameStatus;
using costore::native_host::FrameWriter;
using costore::native_host::Host;

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);

  Host::Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--no-http") {
      options.http = false;
    } else if (arg.rfind("chrome-extension://", 0) == 0) {
      // Chrome's caller origin: allowed as the Origin of a loopback request.
      std::string origin(arg);
      while (!origin.empty() && origin.back() == '/') origin.pop_back();
      options.extension_origins.push_back(origin);
    } else if (i == 2 && arg.find('@') != std::string_view::npos) {
      // Firefox: argv[2] is the extension's id; its pages have a
      // moz-extension:// origin with a per-profile UUID.
      options.allow_moz_extension = true;
    } else if (arg == "--help") {
      std::fprintf(stderr,
                   "usage: %s [--no-http] [chrome-extension://ID/]\n"
                   "Started by a browser for the costore extension; speaks native messaging on stdin/stdout.\n",
                   argv[0]);
      return 0;
    }
  }

  // stdout carries frames only: keep a close-on-exec descriptor of it for
  // the frames and point fd 1 at stderr, so that nothing else (a library's
  // stray print, the manager started by "manager") can corrupt the stream.
  int out = costore::native_host::ReserveStdoutForFrames();
  if (out < 0) {
    std::perror("costore-native-host: dup");
    return 1;
  }

  ClientBackend backend;
  FrameWriter writer(out);
  Host host(&backend, &writer, options);
  FrameReader reader(STDIN_FILENO);
  for (;;) {
    Frame frame = reader.Next();
    if (frame.status == FrameStatus::kOk) {
      host.HandleMessage(frame.payload);
    } else if (frame.status == FrameStatus::kEmpty || frame.status == FrameStatus::kTooLong) {
      host.HandleFrameError(frame);
    } else {
      if (frame.status != FrameStatus::kEof) host.HandleFrameError(frame);
      break;
    }
  }
  // The browser closed the port. Requests still waiting (a consent prompt)
  // have nobody to answer: leave at once; costored sees the connection go
  // and drops what was in flight (an unfinished upload stores nothing).
  host.Shutdown();
  std::fflush(stderr);
  std::_Exit(0);
}
