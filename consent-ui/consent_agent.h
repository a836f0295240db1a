// io.github.costore.ConsentAgent1 on the session bus: takes the daemon's
// RequestConsent calls, hands them to a ConsentQueue and answers each call
// later (a delayed reply), so any number can be pending at once.
#pragma once

#include <QDBusConnection>
#include <QDBusContext>
#include <QObject>
#include <QString>
#include <QVariantMap>

class QDBusServiceWatcher;

namespace costore::ui {

class ConsentQueue;

inline constexpr char kDaemonService[] = "io.github.costore";
inline constexpr char kDaemonPath[] = "/io/github/costore";
inline constexpr char kManagerInterface[] = "io.github.costore.Manager1";
inline constexpr char kAgentPath[] = "/io/github/costore/ConsentAgent";

class ConsentAgent : public QObject, protected QDBusContext {
  Q_OBJECT

 public:
  // Answers calls only from the owner of `daemon_service`: a request from
  // anyone else on the bus is refused (AccessDenied), so no other program
  // can put a dialog in front of the user through the agent.
  ConsentAgent(QDBusConnection bus, ConsentQueue* queue, const QString& daemon_service = QLatin1String(kDaemonService),
               QObject* parent = nullptr);
  ~ConsentAgent() override;

  // Exports the object at kAgentPath, then registers it with the daemon
  // (Manager1.RegisterConsentAgent), and again whenever the daemon's name
  // gets a new owner. false if the object cannot be exported.
  bool start(QString* error);

  ConsentQueue* queue() const { return queue_; }
  bool isRegistered() const { return registered_; }

  // io.github.costore.ConsentAgent1, called by the generated adaptor.
  QString RequestConsent(const QVariantMap& request, QVariantMap& results);
  void Cancel(const QString& id);

 Q_SIGNALS:
  void registered();
  // error_name is a D-Bus error name ("io.github.costore.Error.Busy" when
  // another agent is registered).
  void registrationFailed(const QString& error_name, const QString& message);
  void daemonVanished();
  // The connection to the session bus is gone for good (the session ended).
  void busDisconnected();

 private Q_SLOTS:
  void onLocalDisconnected();

 private:
  void registerWithDaemon();
  bool callerIsDaemon();

  QDBusConnection bus_;
  ConsentQueue* queue_;
  QString daemon_service_;
  QDBusServiceWatcher* watcher_ = nullptr;
  bool exported_ = false;
  bool registered_ = false;
};

}  // namespace costore::ui
