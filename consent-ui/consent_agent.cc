#include "consent-ui/consent_agent.h"

#include <QDBusConnectionInterface>
#include <QDBusError>
#include <QDBusMessage>
#include <QDBusObjectPath>
#include <QDBusPendingCallWatcher>
#include <QDBusPendingReply>
#include <QDBusReply>
#include <QDBusServiceWatcher>

#include "consent-ui/consent_dialog.h"
#include "consent-ui/consent_queue.h"
#include "consentagent1_adaptor.h"

namespace costore::ui {

ConsentAgent::ConsentAgent(QDBusConnection bus, ConsentQueue* queue, const QString& daemon_service, QObject* parent)
    : QObject(parent), bus_(std::move(bus)), queue_(queue), daemon_service_(daemon_service) {
  RegisterDBusTypes();
  new ConsentAgent1Adaptor(this);
}

ConsentAgent::~ConsentAgent() {
  // Pending calls are answered by the queue's owner (or its destructor);
  // the object must be gone from the bus before this is.
  if (exported_) bus_.unregisterObject(QLatin1String(kAgentPath));
  if (registered_) {
    // The daemon also forgets an agent whose connection closes; this is for
    // a connection that lives on.
    QDBusMessage call = QDBusMessage::createMethodCall(daemon_service_, QLatin1String(kDaemonPath),
                                                       QLatin1String(kManagerInterface),
                                                       QStringLiteral("UnregisterConsentAgent"));
    call << QVariant::fromValue(QDBusObjectPath(QLatin1String(kAgentPath)));
    bus_.send(call);
  }
}

bool ConsentAgent::start(QString* error) {
  if (!bus_.isConnected()) {
    *error = QStringLiteral("not connected to the session bus: %1").arg(bus_.lastError().message());
    return false;
  }
  if (!bus_.registerObject(QLatin1String(kAgentPath), this, QDBusConnection::ExportAdaptors)) {
    *error = QStringLiteral("cannot export %1: %2").arg(QLatin1String(kAgentPath), bus_.lastError().message());
    return false;
  }
  exported_ = true;
  watcher_ = new QDBusServiceWatcher(daemon_service_, bus_, QDBusServiceWatcher::WatchForOwnerChange, this);
  connect(watcher_, &QDBusServiceWatcher::serviceOwnerChanged, this,
          [this](const QString&, const QString& old_owner, const QString& new_owner) {
            if (!old_owner.isEmpty()) {
              // The daemon that asked is gone: nobody waits for these answers.
              registered_ = false;
              queue_->cancelAll();
              Q_EMIT daemonVanished();
            }
            if (!new_owner.isEmpty()) registerWithDaemon();
          });
  // libdbus reports the end of the connection (the session bus went away)
  // as a local signal.
  bus_.connect(QString(), QStringLiteral("/org/freedesktop/DBus/Local"), QStringLiteral("org.freedesktop.DBus.Local"),
               QStringLiteral("Disconnected"), this, SLOT(onLocalDisconnected()));
  // Also starts the daemon if it is D-Bus activatable and not running.
  registerWithDaemon();
  return true;
}

void ConsentAgent::onLocalDisconnected() {
  registered_ = false;
  queue_->cancelAll();
  Q_EMIT busDisconnected();
}

void ConsentAgent::registerWithDaemon() {
  QDBusMessage call = QDBusMessage::createMethodCall(daemon_service_, QLatin1String(kDaemonPath),
                                                     QLatin1String(kManagerInterface),
                                                     QStringLiteral("RegisterConsentAgent"));
  call << QVariant::fromValue(QDBusObjectPath(QLatin1String(kAgentPath)));
  auto* watcher = new QDBusPendingCallWatcher(bus_.asyncCall(call), this);
  connect(watcher, &QDBusPendingCallWatcher::finished, this, [this](QDBusPendingCallWatcher* w) {
    w->deleteLater();
    const QDBusPendingReply<> reply = *w;
    if (reply.isError()) {
      registered_ = false;
      Q_EMIT registrationFailed(reply.error().name(), reply.error().message());
      return;
    }
    registered_ = true;
    Q_EMIT registered();
  });
}

bool ConsentAgent::callerIsDaemon() {
  const QDBusReply<QString> owner = bus_.interface()->serviceOwner(daemon_service_);
  return owner.isValid() && !owner.value().isEmpty() && owner.value() == message().service();
}

QString ConsentAgent::RequestConsent(const QVariantMap& request, QVariantMap& results) {
  results.clear();
  if (!calledFromDBus()) return QLatin1String(kDeny);
  if (!callerIsDaemon()) {
    sendErrorReply(QDBusError::AccessDenied,
                   QStringLiteral("only %1 may ask for consent").arg(daemon_service_));
    return {};
  }
  ConsentRequest parsed;
  QString error;
  if (!ConsentRequest::FromVariantMap(request, &parsed, &error)) {
    sendErrorReply(QDBusError::InvalidArgs, QStringLiteral("request: ") + error);
    return {};
  }
  setDelayedReply(true);
  queue_->enqueue(parsed, [bus = bus_, call = message()](const QString& decision) mutable {
    bus.send(call.createReply(QVariantList{decision, QVariant::fromValue(QVariantMap())}));
  });
  return {};
}

void ConsentAgent::Cancel(const QString& id) {
  if (!calledFromDBus()) return;
  if (!callerIsDaemon()) {
    sendErrorReply(QDBusError::AccessDenied, QStringLiteral("only %1 may cancel a request").arg(daemon_service_));
    return;
  }
  queue_->cancel(id);
}

}  // namespace costore::ui
