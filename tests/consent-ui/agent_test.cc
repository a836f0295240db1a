// The agent on a real (private) session bus, spoken to by a stand-in daemon
// that owns its own name: delayed replies, queueing, Cancel, who may call,
// registration and re-registration. Runs under tests/support/with-costored
// for the bus; the real daemon is the subject of daemon_next_test.
#include <QApplication>
#include <QDBusConnection>
#include <QDBusConnectionInterface>
#include <QDBusContext>
#include <QDBusMessage>
#include <QDBusObjectPath>
#include <QDBusPendingCall>
#include <QDBusPendingCallWatcher>
#include <QProcess>
#include <QPushButton>
#include <QTemporaryDir>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QTest>
#include <memory>

#include "consent-ui/consent_agent.h"
#include "consent-ui/consent_dialog.h"
#include "consent-ui/consent_queue.h"
#include "test_support.h"

using namespace costore::ui;

namespace {

constexpr char kFakeDaemonName[] = "io.github.costore.TestDaemon";

// Manager1.RegisterConsentAgent, and nothing else.
class FakeManager : public QObject, protected QDBusContext {
  Q_OBJECT
  Q_CLASSINFO("D-Bus Interface", "io.github.costore.Manager1")

 public:
  int registrations = 0;
  QString path;
  QString sender;
  QString refuse_with;

 public Q_SLOTS:
  void RegisterConsentAgent(const QDBusObjectPath& agent_path) {
    ++registrations;
    path = agent_path.path();
    sender = message().service();
    if (!refuse_with.isEmpty()) sendErrorReply(refuse_with, QStringLiteral("another agent is registered"));
  }
};

QVariantMap Request(const QString& id, const QString& origin = QStringLiteral("https://xenova.github.io")) {
  ConsentRequest r;
  r.id = id;
  r.app = QStringLiteral("/usr/lib/chromium/chromium");
  r.origin = origin;
  r.files << RequestedFile{QStringLiteral("sha256:1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"),
                           QStringLiteral("onnx-community/silero-vad/onnx/model.onnx"), 2327524};
  r.attribution << Attribution{QStringLiteral("/usr/lib/chromium/chromium"), QStringLiteral("https://huggingface.co"),
                               true, 1, 1, 1700000000000000};
  return r.ToVariantMap();
}

}  // namespace

class AgentTest : public QObject {
  Q_OBJECT

 private:
  QDBusConnection daemon_ = QDBusConnection(QString());
  FakeManager manager_;
  std::unique_ptr<ConsentQueue> queue_;
  std::unique_ptr<ConsentAgent> agent_;

  QDBusPendingCall Ask(const QDBusConnection& from, const QVariantMap& request) {
    QDBusMessage call = QDBusMessage::createMethodCall(QDBusConnection::sessionBus().baseService(),
                                                       QLatin1String(kAgentPath),
                                                       QStringLiteral("io.github.costore.ConsentAgent1"),
                                                       QStringLiteral("RequestConsent"));
    call << request;
    return from.asyncCall(call, 120 * 1000);
  }

  QDBusMessage Cancel(const QDBusConnection& from, const QString& id) {
    QDBusMessage call = QDBusMessage::createMethodCall(QDBusConnection::sessionBus().baseService(),
                                                       QLatin1String(kAgentPath),
                                                       QStringLiteral("io.github.costore.ConsentAgent1"),
                                                       QStringLiteral("Cancel"));
    call << id;
    QDBusPendingCall pending = from.asyncCall(call);
    QDBusPendingCallWatcher watcher(pending);
    QSignalSpy done(&watcher, &QDBusPendingCallWatcher::finished);
    if (!pending.isFinished()) done.wait(30000);
    return pending.reply();
  }

  static QString Decision(const QDBusPendingCall& pending) {
    const QDBusMessage reply = pending.reply();
    if (reply.type() != QDBusMessage::ReplyMessage) return QStringLiteral("error:") + reply.errorName();
    if (reply.signature() != QLatin1String("sa{sv}")) return QStringLiteral("signature:") + reply.signature();
    return reply.arguments().value(0).toString();
  }

 private Q_SLOTS:
  void initTestCase() {
    test::UseTestDesktop();
    ConsentDialog::setArmDelayMs(20);
    QVERIFY2(QDBusConnection::sessionBus().isConnected(), "no session bus: run under tests/support/with-costored");
    daemon_ = QDBusConnection::connectToBus(QDBusConnection::SessionBus, QStringLiteral("fake-daemon"));
    QVERIFY(daemon_.isConnected());
    QVERIFY(daemon_.registerObject(QLatin1String(kDaemonPath), &manager_, QDBusConnection::ExportAllSlots));
    QVERIFY(daemon_.registerService(QLatin1String(kFakeDaemonName)));
  }

  void init() {
    manager_.registrations = 0;
    manager_.refuse_with.clear();
    queue_ = std::make_unique<ConsentQueue>();
    agent_ = std::make_unique<ConsentAgent>(QDBusConnection::sessionBus(), queue_.get(), QLatin1String(kFakeDaemonName));
    QSignalSpy registered(agent_.get(), &ConsentAgent::registered);
    QString error;
    QVERIFY2(agent_->start(&error), qPrintable(error));
    QVERIFY(registered.wait(10000));
  }

  void cleanup() {
    agent_.reset();
    queue_.reset();
  }

  void registersWithTheDaemon() {
    QCOMPARE(manager_.registrations, 1);
    QCOMPARE(manager_.path, QLatin1String(kAgentPath));
    QCOMPARE(manager_.sender, QDBusConnection::sessionBus().baseService());
    QVERIFY(agent_->isRegistered());
  }

  void repliesWhenTheUserDecides() {
    QDBusPendingCall pending = Ask(daemon_, Request(QStringLiteral("r1")));
    QTRY_VERIFY(queue_->currentDialog() != nullptr);
    QVERIFY(!pending.isFinished());  // the answer waits for the user
    ConsentDialog* dialog = queue_->currentDialog();
    QCOMPARE(dialog->request().id, QStringLiteral("r1"));
    QCOMPARE(dialog->request().files.size(), 1);
    QCOMPARE(dialog->request().attribution.size(), 1);
    QTRY_VERIFY(dialog->isArmed());
    dialog->allowAlwaysButton()->click();
    QTRY_VERIFY(pending.isFinished());
    QCOMPARE(Decision(pending), QLatin1String(kAllowAlways));
  }

  void severalPendingOneDialog() {
    QDBusPendingCall first = Ask(daemon_, Request(QStringLiteral("a")));
    QDBusPendingCall second = Ask(daemon_, Request(QStringLiteral("b"), QStringLiteral("https://huggingface.co")));
    QTRY_COMPARE(queue_->pendingCount(), 2);
    QTRY_VERIFY(queue_->currentDialog() != nullptr);
    int visible = 0;
    for (QWidget* w : QApplication::topLevelWidgets()) {
      if (qobject_cast<ConsentDialog*>(w) != nullptr && w->isVisible()) ++visible;
    }
    QCOMPARE(visible, 1);
    QCOMPARE(queue_->currentDialog()->request().id, QStringLiteral("a"));

    // Cancel of the queued one: its call is answered (deny) and the visible
    // dialog stays.
    QCOMPARE(Cancel(daemon_, QStringLiteral("b")).type(), QDBusMessage::ReplyMessage);
    QTRY_VERIFY(second.isFinished());
    QCOMPARE(Decision(second), QLatin1String(kDeny));
    QVERIFY(!first.isFinished());
    QCOMPARE(queue_->currentDialog()->request().id, QStringLiteral("a"));

    // Cancel of the visible one closes it and answers deny.
    QPointer<ConsentDialog> dialog = queue_->currentDialog();
    QCOMPARE(Cancel(daemon_, QStringLiteral("a")).type(), QDBusMessage::ReplyMessage);
    QTRY_VERIFY(first.isFinished());
    QCOMPARE(Decision(first), QLatin1String(kDeny));
    QVERIFY(dialog.isNull() || !dialog->isVisible());
    QCOMPARE(queue_->pendingCount(), 0);

    // Unknown ids are ignored.
    QCOMPARE(Cancel(daemon_, QStringLiteral("nope")).type(), QDBusMessage::ReplyMessage);
  }

  void escapeAnswersDeny() {
    QDBusPendingCall pending = Ask(daemon_, Request(QStringLiteral("esc")));
    QTRY_VERIFY(queue_->currentDialog() != nullptr);
    QTest::keyClick(queue_->currentDialog(), Qt::Key_Escape);
    QTRY_VERIFY(pending.isFinished());
    QCOMPARE(Decision(pending), QLatin1String(kDeny));
  }

  void othersOnTheBusAreRefused() {
    QDBusConnection stranger = QDBusConnection::connectToBus(QDBusConnection::SessionBus, QStringLiteral("stranger"));
    QVERIFY(stranger.isConnected());
    QDBusPendingCall pending = Ask(stranger, Request(QStringLiteral("phish"), QStringLiteral("https://evil.example")));
    QTRY_VERIFY(pending.isFinished());
    QCOMPARE(pending.reply().errorName(), QStringLiteral("org.freedesktop.DBus.Error.AccessDenied"));
    QCOMPARE(queue_->pendingCount(), 0);

    // Nor may they cancel the daemon's requests.
    QDBusPendingCall real = Ask(daemon_, Request(QStringLiteral("real")));
    QTRY_COMPARE(queue_->pendingCount(), 1);
    QCOMPARE(Cancel(stranger, QStringLiteral("real")).errorName(), QStringLiteral("org.freedesktop.DBus.Error.AccessDenied"));
    QCOMPARE(queue_->pendingCount(), 1);
    QVERIFY(!real.isFinished());
    QVERIFY(queue_->cancel(QStringLiteral("real")));
    QTRY_VERIFY(real.isFinished());
    QDBusConnection::disconnectFromBus(QStringLiteral("stranger"));
  }

  void malformedRequestIsAnError() {
    QDBusPendingCall pending = Ask(daemon_, QVariantMap{{QStringLiteral("id"), QStringLiteral("x")}});
    QTRY_VERIFY(pending.isFinished());
    QCOMPARE(pending.reply().errorName(), QStringLiteral("org.freedesktop.DBus.Error.InvalidArgs"));
    QCOMPARE(queue_->pendingCount(), 0);
  }

  void introspectsAsTheContract() {
    QDBusMessage call = QDBusMessage::createMethodCall(QDBusConnection::sessionBus().baseService(),
                                                       QLatin1String(kAgentPath),
                                                       QStringLiteral("org.freedesktop.DBus.Introspectable"),
                                                       QStringLiteral("Introspect"));
    QDBusPendingCall pending = daemon_.asyncCall(call);
    QTRY_VERIFY(pending.isFinished());
    const QString xml = pending.reply().arguments().value(0).toString();
    QVERIFY2(xml.contains(QStringLiteral("<interface name=\"io.github.costore.ConsentAgent1\">")), qPrintable(xml));
    QVERIFY(xml.contains(QStringLiteral("<method name=\"RequestConsent\">")));
    // Attribute order is the generator's business.
    auto has_arg = [&xml](const char* type, const char* name, const char* direction) {
      const QString pattern = QStringLiteral("<arg (?=[^>]*type=\"%1\")(?=[^>]*name=\"%2\")(?=[^>]*direction=\"%3\")")
                                  .arg(QRegularExpression::escape(QLatin1String(type)), QLatin1String(name),
                                       QLatin1String(direction));
      return xml.contains(QRegularExpression(pattern));
    };
    QVERIFY(has_arg("a{sv}", "request", "in"));
    QVERIFY(has_arg("s", "decision", "out"));
    QVERIFY(has_arg("a{sv}", "results", "out"));
    QVERIFY(has_arg("s", "id", "in"));
    QVERIFY(xml.contains(QStringLiteral("<method name=\"Cancel\">")));
  }

  void daemonRestartDropsRequestsAndRegistersAgain() {
    QDBusPendingCall pending = Ask(daemon_, Request(QStringLiteral("before")));
    QTRY_COMPARE(queue_->pendingCount(), 1);
    QSignalSpy vanished(agent_.get(), &ConsentAgent::daemonVanished);
    QSignalSpy registered(agent_.get(), &ConsentAgent::registered);
    QVERIFY(daemon_.unregisterService(QLatin1String(kFakeDaemonName)));
    QTRY_COMPARE(vanished.size(), 1);
    QCOMPARE(queue_->pendingCount(), 0);
    QVERIFY(!agent_->isRegistered());
    QTRY_VERIFY(pending.isFinished());  // answered deny on the way out
    QCOMPARE(Decision(pending), QLatin1String(kDeny));

    QVERIFY(daemon_.registerService(QLatin1String(kFakeDaemonName)));
    QTRY_COMPARE(registered.size(), 1);
    QCOMPARE(manager_.registrations, 2);
    QVERIFY(agent_->isRegistered());
  }

  void busyRegistrationIsReported() {
    manager_.refuse_with = QStringLiteral("io.github.costore.Error.Busy");
    QSignalSpy failed(agent_.get(), &ConsentAgent::registrationFailed);
    QVERIFY(daemon_.unregisterService(QLatin1String(kFakeDaemonName)));
    QVERIFY(daemon_.registerService(QLatin1String(kFakeDaemonName)));
    QTRY_COMPARE(failed.size(), 1);
    QCOMPARE(failed.at(0).at(0).toString(), QStringLiteral("io.github.costore.Error.Busy"));
    QVERIFY(!agent_->isRegistered());
  }

  // The real binary on a bus of its own: when the session ends (the bus
  // goes), the agent exits instead of lingering.
  void agentExitsWithTheSession() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    QFile conf(dir.filePath(QStringLiteral("bus.conf")));
    QVERIFY(conf.open(QIODevice::WriteOnly));
    conf.write(QStringLiteral(
                   "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                   " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                   "<busconfig><type>session</type><listen>unix:dir=%1</listen><auth>EXTERNAL</auth>"
                   "<policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>"
                   "<allow eavesdrop=\"true\"/><allow own=\"*\"/></policy>"
                   "</busconfig>\n")
                   .arg(dir.path())
                   .toUtf8());
    conf.close();
    QProcess bus;
    bus.start(QStringLiteral("dbus-daemon"), {QStringLiteral("--config-file=") + conf.fileName(), QStringLiteral("--nofork"),
                                              QStringLiteral("--print-address=1")});
    QVERIFY2(bus.waitForReadyRead(10000), "cannot start dbus-daemon");
    const QString address = QString::fromUtf8(bus.readLine()).trimmed();
    QVERIFY(!address.isEmpty());

    QProcess agent;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("DBUS_SESSION_BUS_ADDRESS"), address);
    agent.setProcessEnvironment(env);
    agent.setProcessChannelMode(QProcess::MergedChannels);
    agent.start(QStringLiteral(COSTORE_CONSENT_BINARY), {QStringLiteral("--agent")});
    QVERIFY(agent.waitForStarted());
    // No daemon on that bus: the agent says so and waits for one.
    QByteArray out;
    while (!out.contains("cannot register") && agent.waitForReadyRead(10000)) out += agent.readAll();
    QVERIFY2(out.contains("cannot register"), out.constData());
    QCOMPARE(agent.state(), QProcess::Running);

    bus.terminate();
    QVERIFY(bus.waitForFinished(10000));
    QVERIFY(agent.state() == QProcess::NotRunning || agent.waitForFinished(30000));
    out += agent.readAll();
    QCOMPARE(agent.exitStatus(), QProcess::NormalExit);
    QCOMPARE(agent.exitCode(), 0);
    QVERIFY2(out.contains("session bus went away"), out.constData());
  }
};

QTEST_MAIN(AgentTest)
#include "agent_test.moc"
