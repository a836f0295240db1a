// What the consent dialog and the manager window show for the daemon's raw
// strings: sites, apps, sizes, digests, times. Everything here is pure text
// work (no widgets), so that it is tested on its own.
#pragma once

#include <QDateTime>
#include <QIcon>
#include <QString>

namespace costore::ui {

// A web origin as the user should read it.
struct SiteDisplay {
  QString origin;  // the origin as given ("" for an app acting for itself)
  QString scheme;  // "https"
  QString host;    // "login.huggingface.co.evil.example", IPv6 without brackets
  int port = -1;   // -1: none written
  // What to show prominently: the registrable domain ("evil.example") for a
  // DNS name, the host as-is for an IP address, "localhost" or a name the
  // public suffix list calls unregistrable; the whole origin when it cannot be
  // parsed as scheme://host[:port].
  QString site;
  bool is_ip = false;
  bool parsed = false;
  bool secure = false;  // https, or a loopback host
};

SiteDisplay DescribeOrigin(const QString& origin);

// The registrable domain of a lowercase host ("evil.example" for
// "login.huggingface.co.evil.example"), from the public suffix list via
// libpsl; "" when the host has none (it is a public suffix itself, a single
// label, an IP address).
QString RegistrableDomain(const QString& host);

// The app as the daemon identified it: an absolute executable path,
// "flatpak:<id>" or "snap:<name>".
struct AppDisplay {
  QString app;         // as given
  QString name;        // basename / flatpak id / snap name: what the kernel told the daemon
  QString kind;        // "" (a program), "Flatpak", "Snap"
  QString desktop_id;  // the matching .desktop file ("chromium.desktop"), if any
  QIcon icon;          // from the matching .desktop file, else a generic app icon
  bool has_own_icon = false;
};

// Looks up the app's .desktop file in $XDG_DATA_HOME, $XDG_DATA_DIRS and the
// flatpak and snap export directories. The displayed name always comes from
// the app string, never from the .desktop file: a sandboxed app exports its
// own .desktop file and could call itself "Firefox" there.
AppDisplay DescribeApp(const QString& app);

// "huggingface.co (chromium)" or, for an app acting for itself, "chromium".
QString DescribePrincipal(const QString& app, const QString& origin);

// 2327524 -> "2.3 MB" (SI units, as GNOME and the CLI show them).
QString FormatSize(quint64 bytes);

// "sha256:1a153a22…8788e3" — enough of both ends to compare by eye.
QString ShortDigest(const QString& digest);

// Microseconds since the epoch -> "just now", "5 minutes ago", "yesterday",
// "12 Mar 2025"; 0 -> "never".
QString FormatWhen(qint64 us, const QDateTime& now = QDateTime::currentDateTimeUtc());

// Replaces control and format characters (bidi overrides, zero-width
// joiners) with U+FFFD so an untrusted string cannot reorder or hide parts of
// what the user reads.
QString Sanitize(const QString& untrusted);

// The last path component of a name hint ("model.onnx" for
// "onnx-community/silero-vad/onnx/model.onnx").
QString NameLeaf(const QString& name);

// Inserts zero-width spaces after '.', '/' and ':' so a long origin wraps
// inside a label instead of widening the window.
QString Breakable(const QString& text);

}  // namespace costore::ui
