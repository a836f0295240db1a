#include "consent-ui/manager_client.h"

#include <QDBusArgument>
#include <QDBusMessage>
#include <QDBusPendingCall>
#include <QDBusServiceWatcher>
#include <QDBusVariant>

#include "consent-ui/consent_agent.h"
#include "consent-ui/consent_request.h"

namespace costore::ui {
namespace {

QDBusError ErrorOf(const QDBusMessage& reply) {
  if (reply.type() == QDBusMessage::ErrorMessage) return QDBusError(reply);
  if (reply.type() != QDBusMessage::ReplyMessage) {
    return QDBusError(QDBusError::Failed, QStringLiteral("no reply"));
  }
  return {};
}

DBusResult<QList<QVariantMap>> MapListReply(const QDBusMessage& reply) {
  DBusResult<QList<QVariantMap>> result;
  result.error = ErrorOf(reply);
  if (!result.ok()) return result;
  if (reply.arguments().size() != 1 || !ToMapList(reply.arguments().constFirst(), &result.value)) {
    result.error = QDBusError(QDBusError::InvalidSignature,
                              QStringLiteral("expected aa{sv}, got %1").arg(reply.signature()));
  }
  return result;
}

DBusResult<QVariantMap> MapReply(const QDBusMessage& reply) {
  DBusResult<QVariantMap> result;
  result.error = ErrorOf(reply);
  if (!result.ok()) return result;
  if (reply.arguments().size() != 1 || reply.signature() != QLatin1String("a{sv}")) {
    result.error = QDBusError(QDBusError::InvalidSignature,
                              QStringLiteral("expected a{sv}, got %1").arg(reply.signature()));
    return result;
  }
  result.value = qdbus_cast<QVariantMap>(reply.arguments().constFirst());
  return result;
}

}  // namespace

bool IsUnknownMethod(const QDBusError& error) {
  return error.type() == QDBusError::UnknownMethod || error.type() == QDBusError::UnknownInterface;
}

bool IsUnreachable(const QDBusError& error) {
  switch (error.type()) {
    case QDBusError::ServiceUnknown:
    case QDBusError::NoReply:
    case QDBusError::Disconnected:
    case QDBusError::NoServer:
    case QDBusError::Timeout:
    case QDBusError::TimedOut:
    case QDBusError::UnknownObject:
      return true;
    default:
      return error.name() == QLatin1String("org.freedesktop.DBus.Error.NameHasNoOwner") ||
             error.name() == QLatin1String("org.freedesktop.DBus.Error.Spawn.ServiceNotFound") ||
             error.name() == QLatin1String("org.freedesktop.DBus.Error.Spawn.ChildExited");
  }
}

ManagerClient::ManagerClient(QDBusConnection bus, const QString& service, QObject* parent)
    : QObject(parent), bus_(std::move(bus)), service_(service) {
  RegisterDBusTypes();
  if (!bus_.isConnected()) return;
  bus_.connect(service_, QLatin1String(kDaemonPath), QLatin1String(kManagerInterface), QStringLiteral("Changed"),
               this, SLOT(onChanged(QString, QString)));
  watcher_ = new QDBusServiceWatcher(service_, bus_, QDBusServiceWatcher::WatchForOwnerChange, this);
  connect(watcher_, &QDBusServiceWatcher::serviceOwnerChanged, this,
          [this](const QString&, const QString& old_owner, const QString& new_owner) {
            if (!old_owner.isEmpty() && new_owner.isEmpty()) Q_EMIT serviceVanished();
            if (!new_owner.isEmpty()) {
              subscribe();  // a new daemon knows no subscription
              Q_EMIT serviceAppeared();
            }
          });
  subscribe();
}

void ManagerClient::subscribe() {
  // Changed is sent only to subscribers. Asynchronous: the window must not
  // wait for a daemon that is being activated; an error (no daemon yet) is
  // mended by the subscription made when it appears.
  QDBusMessage call = QDBusMessage::createMethodCall(service_, QLatin1String(kDaemonPath),
                                                     QLatin1String(kManagerInterface), QStringLiteral("Subscribe"));
  bus_.asyncCall(call);
}

void ManagerClient::onChanged(const QString& what, const QString& digest) { Q_EMIT changed(what, digest); }

QDBusMessage ManagerClient::call(const QString& method, const QVariantList& args) {
  if (!bus_.isConnected()) {
    const QDBusError last = bus_.lastError();
    return QDBusMessage::createError(
        QDBusError::Disconnected,
        last.isValid() ? last.message() : QStringLiteral("not connected to the session bus"));
  }
  QDBusMessage message = QDBusMessage::createMethodCall(service_, QLatin1String(kDaemonPath),
                                                        QLatin1String(kManagerInterface), method);
  message.setArguments(args);
  return bus_.call(message, QDBus::Block, timeout_ms_);
}

DBusResult<QList<QVariantMap>> ManagerClient::list() {
  return MapListReply(call(QStringLiteral("List"), {QVariantMap()}));
}

DBusResult<QList<QVariantMap>> ManagerClient::usage(const QString& digest) {
  return MapListReply(call(QStringLiteral("Usage"), {digest}));
}

DBusResult<QList<QVariantMap>> ManagerClient::listGrants() {
  return MapListReply(call(QStringLiteral("ListGrants"), {QVariantMap()}));
}

DBusStatus ManagerClient::deleteFile(const QString& digest) {
  return {ErrorOf(call(QStringLiteral("Delete"), {digest}))};
}

DBusStatus ManagerClient::grant(const QString& app, const QString& origin, const QString& digest) {
  return {ErrorOf(call(QStringLiteral("Grant"), {app, origin, digest}))};
}

DBusStatus ManagerClient::revoke(const QString& app, const QString& origin, const QString& digest) {
  return {ErrorOf(call(QStringLiteral("Revoke"), {app, origin, digest}))};
}

DBusResult<QVariantMap> ManagerClient::forgetOrigin(const QString& origin) {
  return MapReply(call(QStringLiteral("ForgetOrigin"), {origin}));
}

DBusResult<QVariantMap> ManagerClient::getSettings() {
  return MapReply(call(QStringLiteral("GetSettings"), {}));
}

DBusStatus ManagerClient::setSetting(const QString& key, const QVariant& value) {
  return {ErrorOf(call(QStringLiteral("SetSetting"), {key, QVariant::fromValue(QDBusVariant(value))}))};
}

}  // namespace costore::ui
