// Shared by the consent-ui tests: a fixed desktop environment (test .desktop
// files, the Adwaita icon theme), screenshots, and the daemon helpers.
#pragma once

#include <QApplication>
#include <QCryptographicHash>
#include <QDBusConnection>
#include <QDBusMessage>
#include <QDBusVariant>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QIcon>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>
#include <QWidget>

#include "consent-ui/consent_request.h"

namespace costore::ui::test {

inline QString TestData() { return QStringLiteral(COSTORE_CONSENT_TEST_DATA); }
inline QString ScreenshotDir() { return QStringLiteral(COSTORE_SCREENSHOT_DIR); }

// Desktop files from tests/consent-ui/data, icons from the system themes;
// nothing from the user running the tests. Call before anything looks an
// app up.
inline void UseTestDesktop() {
  static QTemporaryDir home;
  qputenv("XDG_DATA_HOME", QFile::encodeName(home.path()));
  qputenv("XDG_DATA_DIRS", QFile::encodeName(TestData() + QStringLiteral(":/usr/share")));
  QIcon::setThemeSearchPaths({QStringLiteral("/usr/share/icons")});
  QIcon::setThemeName(QStringLiteral("Adwaita"));
  QLocale::setDefault(QLocale::c());
  RegisterDBusTypes();
}

// Saves a screenshot of the widget as a test artifact in the build tree.
inline QString SaveScreenshot(QWidget* widget, const QString& name) {
  QDir().mkpath(ScreenshotDir());
  const QString path = ScreenshotDir() + QLatin1Char('/') + name + QStringLiteral(".png");
  const bool saved = widget->grab().save(path);
  if (!saved) qWarning("could not save %s", qPrintable(path));
  return saved ? path : QString();
}

// --- the real daemon ------------------------------------------------------

struct ModelFile {
  QString path;
  QString digest;
  quint64 size = 0;
};

inline QString Sha256Digest(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return {};
  QCryptographicHash hash(QCryptographicHash::Sha256);
  hash.addData(&f);
  return QStringLiteral("sha256:") + QString::fromLatin1(hash.result().toHex());
}

inline QString SharedModelsDir() { return QStringLiteral(COSTORE_SOURCE_DIR "/../shared/data/models"); }

inline QDBusMessage CallManager(const QString& method, const QVariantList& args) {
  QDBusMessage call = QDBusMessage::createMethodCall(QStringLiteral("io.github.costore"), QStringLiteral("/io/github/costore"),
                                                     QStringLiteral("io.github.costore.Manager1"), method);
  call.setArguments(args);
  return QDBusConnection::sessionBus().call(call, QDBus::Block, 30000);
}

inline QList<QVariantMap> MapList(const QDBusMessage& reply) {
  QList<QVariantMap> out;
  if (reply.type() == QDBusMessage::ReplyMessage && !reply.arguments().isEmpty()) {
    ToMapList(reply.arguments().constFirst(), &out);
  }
  return out;
}

// Whether the daemon's Manager1 has a method (introspection).
inline bool DaemonHas(const QString& method) {
  QDBusMessage call = QDBusMessage::createMethodCall(QStringLiteral("io.github.costore"), QStringLiteral("/io/github/costore"),
                                                     QStringLiteral("org.freedesktop.DBus.Introspectable"),
                                                     QStringLiteral("Introspect"));
  const QDBusMessage reply = QDBusConnection::sessionBus().call(call, QDBus::Block, 10000);
  if (reply.type() != QDBusMessage::ReplyMessage) return false;
  return reply.arguments().value(0).toString().contains(QStringLiteral("<method name=\"%1\"").arg(method));
}

// Deletes every file and revokes every grant: each test starts empty.
inline void ClearStore() {
  for (const QVariantMap& g : MapList(CallManager(QStringLiteral("ListGrants"), {QVariantMap()}))) {
    CallManager(QStringLiteral("Revoke"), {g.value(QStringLiteral("app")), g.value(QStringLiteral("origin")),
                                           g.value(QStringLiteral("digest"))});
  }
  for (const QVariantMap& f : MapList(CallManager(QStringLiteral("List"), {QVariantMap()}))) {
    CallManager(QStringLiteral("Delete"), {f.value(QStringLiteral("digest"))});
  }
}

// Runs a fake browser (tests/consent-ui/fake_app.cc). Returns its exit code;
// *output gets stdout and stderr.
inline int RunFakeApp(const QString& program, const QStringList& args, QString* output = nullptr) {
  QProcess process;
  process.setProcessChannelMode(QProcess::MergedChannels);
  process.start(program, args);
  if (!process.waitForFinished(200 * 1000)) {
    process.kill();
    process.waitForFinished();
    if (output != nullptr) *output = QStringLiteral("timed out");
    return -1;
  }
  if (output != nullptr) *output = QString::fromUtf8(process.readAll());
  return process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1;
}

inline QString FakeChromium() { return QStringLiteral(COSTORE_FAKE_CHROMIUM); }
inline QString FakeFirefox() { return QStringLiteral(COSTORE_FAKE_FIREFOX); }

}  // namespace costore::ui::test
