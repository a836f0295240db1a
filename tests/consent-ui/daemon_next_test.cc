// The consent UI against the real costored's newer Manager1 methods:
// RegisterConsentAgent (the agent end to end, in this process and as the
// real costore-consent binary), ForgetOrigin and GetSettings/SetSetting.
// Exits 77 (CTest: skipped) when the daemon does not have them yet.
#include <QApplication>
#include <QComboBox>
#include <QDBusArgument>
#include <QLabel>
#include <QProcess>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTabWidget>
#include <QTreeWidget>
#include <cstdio>
#include <memory>

#include "consent-ui/consent_agent.h"
#include "consent-ui/consent_dialog.h"
#include "consent-ui/consent_queue.h"
#include "consent-ui/manager_client.h"
#include "consent-ui/manager_window.h"
#include "test_support.h"

using namespace costore::ui;

namespace {

constexpr char kSileroDigest[] = "sha256:1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3";
constexpr char kSileroName[] = "onnx-community/silero-vad/onnx/model.onnx";
constexpr char kHuggingFace[] = "https://huggingface.co";
constexpr char kXenova[] = "https://xenova.github.io";

QString Chromium() { return QFileInfo(test::FakeChromium()).canonicalFilePath(); }
QString Firefox() { return QFileInfo(test::FakeFirefox()).canonicalFilePath(); }

// QProcess::waitForFinished() is false for a process that already ended.
bool Finished(QProcess& p, int timeout_ms = 60000) {
  return p.state() == QProcess::NotRunning || p.waitForFinished(timeout_ms);
}

QString Text(QWidget* root, const char* name) {
  auto* label = root->findChild<QLabel*>(QLatin1String(name));
  return label == nullptr ? QString() : label->text().remove(QChar(0x200B));
}

bool HasGrant(const QString& app, const QString& origin, const QString& digest) {
  for (const QVariantMap& g : test::MapList(test::CallManager(QStringLiteral("ListGrants"), {QVariantMap()}))) {
    if (g.value(QStringLiteral("app")).toString() == app && g.value(QStringLiteral("origin")).toString() == origin &&
        g.value(QStringLiteral("digest")).toString() == digest) {
      return true;
    }
  }
  return false;
}

// The real costore-consent --agent, answering through
// COSTORE_CONSENT_AUTOANSWER.
class AgentProcess {
 public:
  explicit AgentProcess(const QString& answer) {
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("COSTORE_CONSENT_AUTOANSWER"), answer);
    env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
    process_.setProcessEnvironment(env);
    process_.start(QStringLiteral(COSTORE_CONSENT_BINARY), {QStringLiteral("--agent")});
  }
  ~AgentProcess() {
    if (process_.state() != QProcess::NotRunning) {
      process_.terminate();
      if (!process_.waitForFinished(10000)) process_.kill();
      process_.waitForFinished();
    }
  }
  // Waits for "registered as the consent agent" on its stdout.
  bool waitRegistered() {
    while (!out_.contains("registered as the consent agent")) {
      if (process_.state() == QProcess::NotRunning) break;
      if (!process_.waitForReadyRead(30000)) break;
      out_ += process_.readAllStandardOutput();
    }
    return out_.contains("registered as the consent agent");
  }
  QProcess& process() { return process_; }
  QString log() { return QString::fromUtf8(out_ + process_.readAllStandardOutput() + process_.readAllStandardError()); }

 private:
  QProcess process_;
  QByteArray out_;
};

}  // namespace

class DaemonNextTest : public QObject {
  Q_OBJECT

 private:
  QString silero_;
  QString tokenizer_;
  QString tokenizer_digest_;

  static void Store(const QString& browser, const QString& origin, const QString& file, const QString& digest,
                    const QString& name) {
    QString output;
    const int rc = test::RunFakeApp(browser, {QStringLiteral("store"), origin, file, digest, name}, &output);
    QVERIFY2(rc == 0, qPrintable(QStringLiteral("store failed (%1): %2").arg(rc).arg(output)));
  }

  static int Open(const QString& browser, const QString& origin, const QString& digest, QString* output = nullptr) {
    return test::RunFakeApp(browser, {QStringLiteral("open"), origin, digest}, output);
  }

  static void SetSetting(const QString& key, const QVariant& value) {
    const QDBusMessage reply = test::CallManager(QStringLiteral("SetSetting"), {key, QVariant::fromValue(QDBusVariant(value))});
    QVERIFY2(reply.type() == QDBusMessage::ReplyMessage, qPrintable(reply.errorMessage()));
  }

  static QVariantMap Settings() {
    const QDBusMessage reply = test::CallManager(QStringLiteral("GetSettings"), {});
    return reply.type() == QDBusMessage::ReplyMessage ? qdbus_cast<QVariantMap>(reply.arguments().value(0))
                                                      : QVariantMap();
  }

 private Q_SLOTS:
  void initTestCase() {
    test::UseTestDesktop();
    ConsentDialog::setArmDelayMs(20);
    silero_ = test::SharedModelsDir() + QStringLiteral("/silero_vad.onnx");
    QVERIFY2(QFileInfo::exists(silero_), qPrintable(QStringLiteral("the real model file is missing: %1").arg(silero_)));
    const QString scratch = qEnvironmentVariable("COSTORE_TEST_DIR", QDir::tempPath());
    tokenizer_ = scratch + QStringLiteral("/tokenizer.json");
    QFile f(tokenizer_);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write("{\"version\":\"1.0\",\"model\":{\"type\":\"BPE\"}}\n");
    f.close();
    tokenizer_digest_ = test::Sha256Digest(tokenizer_);
    // Every test asks: no prompt budget in the way.
    SetSetting(QStringLiteral("prompts-per-hour"), QVariant::fromValue<uint>(3600));
    SetSetting(QStringLiteral("consent-policy"), QStringLiteral("ask"));
    SetSetting(QStringLiteral("consent-timeout"), QVariant::fromValue<uint>(60));
  }

  void init() { test::ClearStore(); }

  void cleanup() {
    // An agent of this process unregisters as it goes; any call on the same
    // connection after that makes sure the daemon has seen it.
    test::CallManager(QStringLiteral("List"), {QVariantMap()});
  }

  // --- the agent in this process, asked by the real daemon ---------------

  void inProcessAgentShowsTheDaemonsQuestion() {
    Store(Chromium(), QLatin1String(kHuggingFace), silero_, QLatin1String(kSileroDigest), QLatin1String(kSileroName));
    ConsentQueue queue;
    ConsentAgent agent(QDBusConnection::sessionBus(), &queue);
    QSignalSpy registered(&agent, &ConsentAgent::registered);
    QString error;
    QVERIFY2(agent.start(&error), qPrintable(error));
    QVERIFY(registered.wait(10000));

    // The fake Firefox opens for xenova.github.io: the daemon asks us.
    QProcess open;
    open.start(test::FakeFirefox(), {QStringLiteral("open"), QLatin1String(kXenova), QLatin1String(kSileroDigest)});
    QTRY_VERIFY_WITH_TIMEOUT(queue.currentDialog() != nullptr, 30000);
    ConsentDialog* dialog = queue.currentDialog();
    QCOMPARE(Text(dialog, "site"), QStringLiteral("xenova.github.io"));
    QCOMPARE(Text(dialog, "origin"), QLatin1String(kXenova));
    QCOMPARE(Text(dialog, "app"), QStringLiteral("firefox"));
    QCOMPARE(Text(dialog, "fileName"), QStringLiteral("model.onnx"));
    QCOMPARE(Text(dialog, "fileSize"), QStringLiteral("2.3 MB"));
    QCOMPARE(Text(dialog, "storedBy"), QStringLiteral("huggingface.co (chromium)"));
    QCOMPARE(dialog->request().app, Firefox());
    QTRY_VERIFY(dialog->isArmed());
    dialog->adjustSize();
    test::SaveScreenshot(dialog, QStringLiteral("consent-dialog-live"));
    dialog->allowOnceButton()->click();
    QVERIFY(Finished(open));
    QCOMPARE(open.exitCode(), 0);
    QVERIFY(!HasGrant(Firefox(), QLatin1String(kXenova), QLatin1String(kSileroDigest)));
  }

  void inProcessAgentIsCancelledWhenTheDaemonStopsWaiting() {
    Store(Chromium(), QLatin1String(kHuggingFace), silero_, QLatin1String(kSileroDigest), QLatin1String(kSileroName));
    SetSetting(QStringLiteral("consent-timeout"), QVariant::fromValue<uint>(1));
    ConsentQueue queue;
    QSignalSpy answered(&queue, &ConsentQueue::answered);
    ConsentAgent agent(QDBusConnection::sessionBus(), &queue);
    QSignalSpy registered(&agent, &ConsentAgent::registered);
    QString error;
    QVERIFY(agent.start(&error));
    QVERIFY(registered.wait(10000));
    QProcess open;
    open.start(test::FakeFirefox(), {QStringLiteral("open"), QStringLiteral("https://slow.example.org"),
                                     QLatin1String(kSileroDigest)});
    QTRY_VERIFY_WITH_TIMEOUT(queue.currentDialog() != nullptr, 30000);
    // Nobody answers: the daemon gives up and calls Cancel; the dialog goes.
    QTRY_COMPARE_WITH_TIMEOUT(answered.size(), 1, 60000);
    QCOMPARE(answered.at(0).at(1).toString(), QLatin1String(kDeny));
    QCOMPARE(answered.at(0).at(2).toBool(), true);  // by Cancel, not by a click
    QCOMPARE(queue.currentDialog(), nullptr);
    QVERIFY(Finished(open));
    QCOMPARE(open.exitCode(), 2);  // NotFound
    SetSetting(QStringLiteral("consent-timeout"), QVariant::fromValue<uint>(60));
  }

  // --- the real costore-consent --agent ----------------------------------

  void agentAllowOnce() {
    Store(Chromium(), QLatin1String(kHuggingFace), silero_, QLatin1String(kSileroDigest), QLatin1String(kSileroName));
    AgentProcess agent{QLatin1String(kAllowOnce)};
    QVERIFY2(agent.waitRegistered(), qPrintable(agent.log()));
    QString output;
    QCOMPARE(Open(Firefox(), QLatin1String(kXenova), QLatin1String(kSileroDigest), &output), 0);
    QCOMPARE(output.trimmed(), QStringLiteral("2327524"));
    QVERIFY(!HasGrant(Firefox(), QLatin1String(kXenova), QLatin1String(kSileroDigest)));
    // Once is once: the next open asks again (and is allowed again).
    QCOMPARE(Open(Firefox(), QLatin1String(kXenova), QLatin1String(kSileroDigest)), 0);
  }

  void agentAllowAlways() {
    Store(Chromium(), QLatin1String(kHuggingFace), silero_, QLatin1String(kSileroDigest), QLatin1String(kSileroName));
    AgentProcess agent{QLatin1String(kAllowAlways)};
    QVERIFY2(agent.waitRegistered(), qPrintable(agent.log()));
    QString output;
    QCOMPARE(Open(Firefox(), QStringLiteral("https://whisper.example.net"), QLatin1String(kSileroDigest), &output), 0);
    QVERIFY(HasGrant(Firefox(), QStringLiteral("https://whisper.example.net"), QLatin1String(kSileroDigest)));
  }

  void agentDeny() {
    Store(Chromium(), QLatin1String(kHuggingFace), silero_, QLatin1String(kSileroDigest), QLatin1String(kSileroName));
    AgentProcess agent{QLatin1String(kDeny)};
    QVERIFY2(agent.waitRegistered(), qPrintable(agent.log()));
    QString output;
    QCOMPARE(Open(Firefox(), QStringLiteral("https://login.huggingface.co.evil.example"), QLatin1String(kSileroDigest),
                  &output),
             2);
    QVERIFY2(output.contains(QStringLiteral("io.github.costore.Error.NotFound")), qPrintable(output));
  }

  void agentQueuesConcurrentQuestions() {
    Store(Chromium(), QLatin1String(kHuggingFace), silero_, QLatin1String(kSileroDigest), QLatin1String(kSileroName));
    AgentProcess agent{QLatin1String(kAllowOnce)};
    QVERIFY2(agent.waitRegistered(), qPrintable(agent.log()));
    QList<std::shared_ptr<QProcess>> opens;
    for (const char* origin : {"https://a.example.org", "https://b.example.org", "https://c.example.org"}) {
      auto p = std::make_shared<QProcess>();
      p->setProcessChannelMode(QProcess::MergedChannels);
      p->start(test::FakeFirefox(), {QStringLiteral("open"), QLatin1String(origin), QLatin1String(kSileroDigest)});
      opens << p;
    }
    for (auto& p : opens) {
      QVERIFY(Finished(*p, 120000));
      QVERIFY2(p->exitCode() == 0, p->readAll().constData());
    }
  }

  void secondAgentIsRefused() {
    AgentProcess first{QString()};
    QVERIFY2(first.waitRegistered(), qPrintable(first.log()));
    AgentProcess second{QString()};
    QVERIFY(Finished(second.process(), 30000));
    QCOMPARE(second.process().exitCode(), 1);
    QVERIFY2(second.log().contains(QStringLiteral("io.github.costore.Error.Busy")), qPrintable(second.log()));
    QCOMPARE(first.process().state(), QProcess::Running);
  }

  // Registered as its own CTest test (consent_ui_agent_autostart_test), with
  // costore-consent on the daemon's PATH and COSTORE_CONSENT_AUTOANSWER in
  // its environment: no agent runs, so costored starts one to ask.
  void agentStartedByTheDaemon() {
    if (qEnvironmentVariable("COSTORE_TEST_AGENT_AUTOSTART") != QLatin1String("1")) {
      QSKIP("runs as consent_ui_agent_autostart_test");
    }
    Store(Chromium(), QLatin1String(kHuggingFace), silero_, QLatin1String(kSileroDigest), QLatin1String(kSileroName));
    QString output;
    QCOMPARE(Open(Firefox(), QLatin1String(kXenova), QLatin1String(kSileroDigest), &output), 0);
    QCOMPARE(output.trimmed(), QStringLiteral("2327524"));
  }

  // --- the manager window -------------------------------------------------

  void forgetSiteThroughTheWindow() {
    Store(Chromium(), QLatin1String(kHuggingFace), silero_, QLatin1String(kSileroDigest), QLatin1String(kSileroName));
    Store(Firefox(), QLatin1String(kXenova), tokenizer_, tokenizer_digest_, QStringLiteral("Xenova/whisper-tiny.en/tokenizer.json"));
    QVERIFY(test::CallManager(QStringLiteral("Grant"), {Firefox(), QLatin1String(kXenova), QLatin1String(kSileroDigest)})
                .type() == QDBusMessage::ReplyMessage);

    ManagerClient client(QDBusConnection::sessionBus());
    ManagerWindow window(&client);
    QStringList asked;
    window.setConfirm([&asked](const QString& title, const QString& text, const QString&) {
      asked << title << text;
      return true;
    });
    window.show();
    window.tabs()->setCurrentIndex(1);
    QCOMPARE(window.filesModel()->rowCount(), 2);
    QVERIFY(window.selectSiteItem(QLatin1String(kXenova)));
    QVERIFY(window.forgetButton()->isEnabled());
    QTest::mouseClick(window.forgetButton(), Qt::LeftButton);
    QCOMPARE(asked.value(0), QStringLiteral("Forget xenova.github.io?"));
    QVERIFY2(asked.value(1).contains(QStringLiteral("1 file that only this site stored")), qPrintable(asked.value(1)));

    // The daemon forgot: the grant, and the file only xenova stored.
    QVERIFY(!HasGrant(Firefox(), QLatin1String(kXenova), QLatin1String(kSileroDigest)));
    const QList<QVariantMap> files = test::MapList(test::CallManager(QStringLiteral("List"), {QVariantMap()}));
    QCOMPARE(files.size(), 1);
    QCOMPARE(files.at(0).value(QStringLiteral("digest")).toString(), QLatin1String(kSileroDigest));
    QVERIFY2(window.messageLabel()->text().startsWith(QStringLiteral("Forgot xenova.github.io: 1 permission removed, 1 file deleted")),
             qPrintable(window.messageLabel()->text()));
    // And the window followed Changed.
    QTRY_COMPARE(window.filesModel()->rowCount(), 1);
    QTRY_VERIFY(window.selectSiteItem(QLatin1String(kXenova)) == false);
    QVERIFY(window.selectSiteItem(QLatin1String(kHuggingFace)));
  }

  void settingsThroughTheWindow() {
    SetSetting(QStringLiteral("consent-timeout"), QVariant::fromValue<uint>(60));
    ManagerClient client(QDBusConnection::sessionBus());
    ManagerWindow window(&client);
    window.show();
    window.tabs()->setCurrentIndex(2);
    QVERIFY(window.settingsPane()->isEnabled());
    QCOMPARE(window.policyCombo()->currentData().toString(), QStringLiteral("ask"));
    QCOMPARE(window.timeoutSpin()->value(), 60);
    QCOMPARE(window.promptsSpin()->value(), 3600);

    // The user picks "Say it is not here, then ask me", then "Deny without asking".
    window.policyCombo()->setFocus();
    QTest::keyClick(window.policyCombo(), Qt::Key_Down);
    QCOMPARE(window.policyCombo()->currentData().toString(), QStringLiteral("ask-later"));
    QCOMPARE(Settings().value(QStringLiteral("consent-policy")).toString(), QStringLiteral("ask-later"));
    QTest::keyClick(window.policyCombo(), Qt::Key_Down);
    QCOMPARE(window.policyCombo()->currentData().toString(), QStringLiteral("deny"));
    QCOMPARE(Settings().value(QStringLiteral("consent-policy")).toString(), QStringLiteral("deny"));

    // Someone else changes it back: Changed("settings") updates the window.
    SetSetting(QStringLiteral("consent-policy"), QStringLiteral("ask"));
    QTRY_COMPARE(window.policyCombo()->currentData().toString(), QStringLiteral("ask"));

    window.timeoutSpin()->setValue(45);
    Q_EMIT window.timeoutSpin()->editingFinished();
    QCOMPARE(Settings().value(QStringLiteral("consent-timeout")).toUInt(), 45u);
    window.promptsSpin()->setValue(12);
    Q_EMIT window.promptsSpin()->editingFinished();
    QCOMPARE(Settings().value(QStringLiteral("prompts-per-hour")).toUInt(), 12u);
    test::SaveScreenshot(&window, QStringLiteral("manager-settings-live"));

    SetSetting(QStringLiteral("consent-timeout"), QVariant::fromValue<uint>(60));
    SetSetting(QStringLiteral("prompts-per-hour"), QVariant::fromValue<uint>(3600));
    QTRY_COMPARE(window.timeoutSpin()->value(), 60);
  }
};

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  costore::ui::RegisterDBusTypes();
  QStringList missing;
  for (const char* method : {"RegisterConsentAgent", "ForgetOrigin", "GetSettings", "SetSetting"}) {
    if (!test::DaemonHas(QLatin1String(method))) missing << QLatin1String(method);
  }
  if (!missing.isEmpty()) {
    std::fprintf(stderr, "SKIP: costored has no Manager1.%s yet\n", qPrintable(missing.join(QStringLiteral(", Manager1."))));
    return 77;
  }
  DaemonNextTest test;
  return QTest::qExec(&test, argc, argv);
}

#include "daemon_next_test.moc"
