#include "consent-ui/display.h"

#include <libpsl.h>

#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QFileInfo>
#include <QHash>
#include <QHostAddress>
#include <QLocale>
#include <QRegularExpression>
#include <QSet>
#include <QStandardPaths>
#include <QTextStream>
#include <QTimeZone>

#include "consent-ui/icons.h"

namespace costore::ui {
namespace {

const psl_ctx_t* PublicSuffixList() {
  // psl_latest(NULL) takes the newer of the system list
  // (/usr/share/publicsuffix/public_suffix_list.dafsa on Debian) and the
  // list built into libpsl.
  static const psl_ctx_t* const psl = [] {
    const psl_ctx_t* ctx = psl_latest(nullptr);
    return ctx != nullptr ? ctx : psl_builtin();
  }();
  return psl;
}

bool IsLocalhost(const QString& host) {
  return host == QLatin1String("localhost") || host.endsWith(QLatin1String(".localhost"));
}

// --- .desktop files -------------------------------------------------------

struct DesktopEntry {
  QString id;  // "chromium.desktop"
  QString exec_program;
  QString try_exec;
  QString icon;
};

// The program of an Exec= line: its first word, quotes removed, skipping an
// "env VAR=value ..." prefix.
QString ExecProgram(const QString& exec) {
  QStringList words;
  QString word;
  bool quoted = false;
  bool in_word = false;
  for (int i = 0; i < exec.size(); ++i) {
    const QChar c = exec.at(i);
    if (c == QLatin1Char('"')) {
      quoted = !quoted;
      in_word = true;
    } else if (c == QLatin1Char('\\') && quoted && i + 1 < exec.size()) {
      word += exec.at(++i);
    } else if (c.isSpace() && !quoted) {
      if (in_word) words << word;
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words << word;
  int first = 0;
  if (!words.isEmpty() && QFileInfo(words.first()).fileName() == QLatin1String("env")) {
    first = 1;
    while (first < words.size() && words.at(first).contains(QLatin1Char('='))) ++first;
  }
  return first < words.size() ? words.at(first) : QString();
}

bool ReadDesktopEntry(const QString& path, const QString& id, DesktopEntry* entry) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly | QIODevice::Text)) return false;
  if (file.size() > 256 * 1024) return false;
  QTextStream in(&file);
  bool in_group = false;
  bool hidden = false;
  bool application = false;
  entry->id = id;
  while (!in.atEnd()) {
    const QString line = in.readLine().trimmed();
    if (line.startsWith(QLatin1Char('['))) {
      in_group = line == QLatin1String("[Desktop Entry]");
      continue;
    }
    if (!in_group) continue;
    const int eq = line.indexOf(QLatin1Char('='));
    if (eq <= 0) continue;
    const QString key = line.left(eq).trimmed();
    const QString value = line.mid(eq + 1).trimmed();
    if (key == QLatin1String("Exec")) {
      entry->exec_program = ExecProgram(value);
    } else if (key == QLatin1String("TryExec")) {
      entry->try_exec = value;
    } else if (key == QLatin1String("Icon")) {
      entry->icon = value;
    } else if (key == QLatin1String("Hidden")) {
      hidden = value == QLatin1String("true");
    } else if (key == QLatin1String("Type")) {
      application = value == QLatin1String("Application");
    }
  }
  return application && !hidden;
}

QStringList ApplicationDirs() {
  QStringList data_dirs;
  const QString data_home = qEnvironmentVariable("XDG_DATA_HOME",
                                                 QDir::homePath() + QStringLiteral("/.local/share"));
  data_dirs << data_home;
  const QString dirs = qEnvironmentVariable("XDG_DATA_DIRS", QStringLiteral("/usr/local/share:/usr/share"));
  data_dirs << dirs.split(QLatin1Char(':'), Qt::SkipEmptyParts);
  // Usually already in XDG_DATA_DIRS when flatpak or snapd is installed.
  data_dirs << data_home + QStringLiteral("/flatpak/exports/share")
            << QStringLiteral("/var/lib/flatpak/exports/share");
  QStringList out;
  for (const QString& dir : data_dirs) {
    const QString apps = dir + QStringLiteral("/applications");
    if (!out.contains(apps)) out << apps;
  }
  out << QStringLiteral("/var/lib/snapd/desktop/applications");
  return out;
}

// Every application entry, first directory first; a desktop file id found
// twice counts once (the earlier directory wins, as the XDG spec says).
QList<DesktopEntry> AllDesktopEntries() {
  QList<DesktopEntry> entries;
  QSet<QString> seen;
  for (const QString& dir : ApplicationDirs()) {
    QDirIterator it(dir, {QStringLiteral("*.desktop")}, QDir::Files, QDirIterator::Subdirectories);
    while (it.hasNext()) {
      const QString path = it.next();
      QString id = QDir(dir).relativeFilePath(path);
      id.replace(QLatin1Char('/'), QLatin1Char('-'));
      if (seen.contains(id)) continue;
      seen.insert(id);
      DesktopEntry entry;
      if (ReadDesktopEntry(path, id, &entry)) entries << entry;
    }
  }
  return entries;
}

const DesktopEntry* FindDesktopEntry(const QList<DesktopEntry>& entries, const QString& app,
                                     const QString& kind, const QString& name) {
  if (kind == QLatin1String("Flatpak")) {
    for (const auto& e : entries) {
      if (e.id == name + QStringLiteral(".desktop")) return &e;
    }
    return nullptr;
  }
  if (kind == QLatin1String("Snap")) {
    const DesktopEntry* any = nullptr;
    for (const auto& e : entries) {
      if (e.id == name + QLatin1Char('_') + name + QStringLiteral(".desktop")) return &e;
      if (any == nullptr && e.id.startsWith(name + QLatin1Char('_'))) any = &e;
    }
    return any;
  }
  // A program: its Exec= or TryExec= names the same file, or the same
  // basename (/usr/bin/chromium starts /usr/lib/chromium/chromium), or the
  // desktop file is named after it.
  for (const auto& e : entries) {
    for (const QString& program : {e.exec_program, e.try_exec}) {
      if (program.isEmpty()) continue;
      if (program == app) return &e;
      if (program.startsWith(QLatin1Char('/')) && QFileInfo(program).canonicalFilePath() == app) return &e;
    }
  }
  for (const auto& e : entries) {
    for (const QString& program : {e.exec_program, e.try_exec}) {
      if (!program.isEmpty() && QFileInfo(program).fileName() == name) return &e;
    }
  }
  for (const auto& e : entries) {
    if (e.id == name + QStringLiteral(".desktop")) return &e;
  }
  return nullptr;
}

QIcon IconFor(const DesktopEntry& entry) {
  if (entry.icon.isEmpty()) return {};
  if (entry.icon.startsWith(QLatin1Char('/'))) {
    return QFileInfo::exists(entry.icon) ? QIcon(entry.icon) : QIcon();
  }
  QIcon icon = QIcon::fromTheme(entry.icon);
  return icon.availableSizes().isEmpty() && icon.isNull() ? QIcon() : icon;
}

}  // namespace

QString RegistrableDomain(const QString& host) {
  QString h = host.toLower();
  while (h.endsWith(QLatin1Char('.'))) h.chop(1);
  if (h.isEmpty() || !QHostAddress(h).isNull()) return {};
  const QByteArray utf8 = h.toUtf8();
  const char* domain = psl_registrable_domain(PublicSuffixList(), utf8.constData());
  if (domain == nullptr) return {};
  return QString::fromUtf8(domain);
}

SiteDisplay DescribeOrigin(const QString& origin) {
  SiteDisplay d;
  d.origin = origin;
  d.site = origin;
  const int sep = origin.indexOf(QStringLiteral("://"));
  if (sep <= 0) return d;
  d.scheme = origin.left(sep).toLower();
  QString rest = origin.mid(sep + 3);
  // An origin has no path; be lenient with one anyway, and with userinfo:
  // the host is what follows the last '@', as a URL parser reads it.
  const int slash = rest.indexOf(QRegularExpression(QStringLiteral("[/?#]")));
  if (slash >= 0) rest.truncate(slash);
  const int at = rest.lastIndexOf(QLatin1Char('@'));
  if (at >= 0) rest = rest.mid(at + 1);
  QString port;
  if (rest.startsWith(QLatin1Char('['))) {
    const int close = rest.indexOf(QLatin1Char(']'));
    if (close < 0) return d;
    d.host = rest.mid(1, close - 1);
    const QString after = rest.mid(close + 1);
    if (after.startsWith(QLatin1Char(':'))) port = after.mid(1);
    else if (!after.isEmpty()) return d;
  } else {
    const int colon = rest.lastIndexOf(QLatin1Char(':'));
    d.host = colon >= 0 ? rest.left(colon) : rest;
    if (colon >= 0) port = rest.mid(colon + 1);
  }
  d.host = d.host.toLower();
  if (d.host.isEmpty()) return d;
  if (!port.isEmpty()) {
    bool ok = false;
    const int p = port.toInt(&ok);
    if (!ok || p < 0 || p > 65535) return d;
    d.port = p;
  }
  d.parsed = true;
  const QHostAddress address(d.host);
  d.is_ip = !address.isNull();
  const bool loopback = (d.is_ip && address.isLoopback()) || IsLocalhost(d.host);
  d.secure = d.scheme == QLatin1String("https") || d.scheme == QLatin1String("wss") || loopback;

  if (d.scheme != QLatin1String("http") && d.scheme != QLatin1String("https")) {
    // chrome-extension://<id> and the like: the id means nothing shortened.
    d.site = origin;
    return d;
  }
  const QString port_suffix = d.port >= 0 ? QStringLiteral(":%1").arg(d.port) : QString();
  if (d.is_ip) {
    d.site = (address.protocol() == QAbstractSocket::IPv6Protocol ? QStringLiteral("[%1]").arg(d.host) : d.host) +
             port_suffix;
  } else if (IsLocalhost(d.host)) {
    d.site = d.host + port_suffix;
  } else {
    const QString registrable = RegistrableDomain(d.host);
    d.site = registrable.isEmpty() ? d.host : registrable;
  }
  return d;
}

AppDisplay DescribeApp(const QString& app) {
  static QHash<QString, AppDisplay> cache;
  if (auto it = cache.constFind(app); it != cache.constEnd()) return *it;

  AppDisplay d;
  d.app = app;
  if (app.startsWith(QLatin1String("flatpak:"))) {
    d.kind = QStringLiteral("Flatpak");
    d.name = app.mid(8);
  } else if (app.startsWith(QLatin1String("snap:"))) {
    d.kind = QStringLiteral("Snap");
    d.name = app.mid(5);
  } else {
    d.name = QFileInfo(app).fileName();
    if (d.name.isEmpty()) d.name = app;
  }
  d.name = Sanitize(d.name);
  // Scanned again for each app not seen before: an app installed while the
  // agent runs is found.
  const QList<DesktopEntry> entries = AllDesktopEntries();
  if (const DesktopEntry* entry = FindDesktopEntry(entries, app, d.kind, d.name)) {
    d.desktop_id = entry->id;
    d.icon = IconFor(*entry);
    d.has_own_icon = !d.icon.isNull();
  }
  if (d.icon.isNull()) d.icon = GenericAppIcon();
  cache.insert(app, d);
  return d;
}

QString DescribePrincipal(const QString& app, const QString& origin) {
  const QString app_name = DescribeApp(app).name;
  if (origin.isEmpty()) return app_name;
  return QStringLiteral("%1 (%2)").arg(Sanitize(DescribeOrigin(origin).site), app_name);
}

QString FormatSize(quint64 bytes) {
  if (bytes < 1000) return bytes == 1 ? QStringLiteral("1 byte") : QStringLiteral("%1 bytes").arg(bytes);
  static const char* const units[] = {"kB", "MB", "GB", "TB", "PB", "EB"};
  double value = static_cast<double>(bytes);
  int unit = -1;
  while (value >= 999.95 && unit < 5) {
    value /= 1000.0;
    ++unit;
  }
  return QStringLiteral("%1 %2").arg(QLocale::c().toString(value, 'f', value < 99.95 ? 1 : 0),
                                     QLatin1String(units[unit]));
}

QString ShortDigest(const QString& digest) {
  const int colon = digest.indexOf(QLatin1Char(':'));
  const QString algorithm = colon > 0 ? digest.left(colon + 1) : QString();
  const QString hex = colon > 0 ? digest.mid(colon + 1) : digest;
  if (hex.size() <= 20) return Sanitize(digest);
  return Sanitize(algorithm + hex.left(12) + QChar(0x2026) + hex.right(6));
}

QString FormatWhen(qint64 us, const QDateTime& now) {
  if (us <= 0) return QStringLiteral("never");
  const QDateTime when = QDateTime::fromMSecsSinceEpoch(us / 1000, Qt::UTC);
  const qint64 seconds = when.secsTo(now);
  if (seconds < 60) return QStringLiteral("just now");
  const qint64 minutes = seconds / 60;
  if (minutes < 60) return minutes == 1 ? QStringLiteral("1 minute ago") : QStringLiteral("%1 minutes ago").arg(minutes);
  const qint64 hours = minutes / 60;
  if (hours < 24) return hours == 1 ? QStringLiteral("1 hour ago") : QStringLiteral("%1 hours ago").arg(hours);
  const qint64 days = hours / 24;
  if (days < 2) return QStringLiteral("yesterday");
  if (days < 7) return QStringLiteral("%1 days ago").arg(days);
  const QDate date = when.toLocalTime().date();
  const QString format = date.year() == now.toLocalTime().date().year() ? QStringLiteral("d MMM")
                                                                         : QStringLiteral("d MMM yyyy");
  return QLocale::c().toString(date, format);
}

QString Sanitize(const QString& untrusted) {
  QString out;
  out.reserve(untrusted.size());
  for (const char32_t c : untrusted.toUcs4()) {
    switch (QChar::category(c)) {
      case QChar::Other_Control:
      case QChar::Other_Format:
      case QChar::Separator_Line:
      case QChar::Separator_Paragraph:
        out += QChar(QChar::ReplacementCharacter);
        break;
      default:
        out += QString::fromUcs4(&c, 1);
    }
  }
  return out;
}

QString NameLeaf(const QString& name) {
  const int slash = name.lastIndexOf(QLatin1Char('/'));
  return slash >= 0 && slash + 1 < name.size() ? name.mid(slash + 1) : name;
}

QString Breakable(const QString& text) {
  QString out;
  out.reserve(text.size() + text.size() / 4);
  for (const QChar c : text) {
    out += c;
    if (c == QLatin1Char('.') || c == QLatin1Char('/') || c == QLatin1Char(':') || c == QLatin1Char('-')) {
      out += QChar(0x200B);
    }
  }
  return out;
}

}  // namespace costore::ui
