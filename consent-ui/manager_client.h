// io.github.costore.Manager1, called by name (QDBusMessage): the interface
// grows methods (ForgetOrigin, GetSettings, ...) that a daemon may not have
// yet, and a missing method must read as "not supported", not break the
// build or the window.
#pragma once

#include <QDBusConnection>
#include <QDBusError>
#include <QList>
#include <QObject>
#include <QString>
#include <QVariantMap>

class QDBusServiceWatcher;

namespace costore::ui {

template <typename T>
struct DBusResult {
  T value{};
  QDBusError error;
  bool ok() const { return !error.isValid(); }
};

struct DBusStatus {
  QDBusError error;
  bool ok() const { return !error.isValid(); }
};

// The error means the daemon lacks the method (an older costored).
bool IsUnknownMethod(const QDBusError& error);
// The error means nobody answers at that name (not running, not activatable).
bool IsUnreachable(const QDBusError& error);

class ManagerClient : public QObject {
  Q_OBJECT

 public:
  explicit ManagerClient(QDBusConnection bus, const QString& service = QStringLiteral("io.github.costore"),
                         QObject* parent = nullptr);

  const QDBusConnection& bus() const { return bus_; }
  const QString& service() const { return service_; }

  // Calls block (without running the event loop) for at most timeoutMs.
  void setTimeoutMs(int ms) { timeout_ms_ = ms; }

  DBusResult<QList<QVariantMap>> list();
  DBusResult<QList<QVariantMap>> usage(const QString& digest);
  DBusResult<QList<QVariantMap>> listGrants();
  DBusStatus deleteFile(const QString& digest);
  DBusStatus grant(const QString& app, const QString& origin, const QString& digest);
  DBusStatus revoke(const QString& app, const QString& origin, const QString& digest);
  DBusResult<QVariantMap> forgetOrigin(const QString& origin);
  DBusResult<QVariantMap> getSettings();
  DBusStatus setSetting(const QString& key, const QVariant& value);

 Q_SIGNALS:
  // Manager1.Changed.
  void changed(const QString& what, const QString& digest);
  void serviceAppeared();
  void serviceVanished();

 private Q_SLOTS:
  void onChanged(const QString& what, const QString& digest);

 private:
  void subscribe();
  QDBusMessage call(const QString& method, const QVariantList& args);

  QDBusConnection bus_;
  QString service_;
  int timeout_ms_ = 10000;
  QDBusServiceWatcher* watcher_ = nullptr;
};

}  // namespace costore::ui
