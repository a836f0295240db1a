// A RequestConsent call's a{sv}, as plain data.
#pragma once

#include <QList>
#include <QString>
#include <QVariantMap>

namespace costore::ui {

struct RequestedFile {
  QString digest;
  QString name;  // a hint; may be ""
  quint64 size = 0;
};

struct Attribution {
  QString app;
  QString origin;
  bool stored = false;
  quint32 reads = 0;
  quint32 stores = 0;
  qint64 last_used_us = 0;
};

struct ConsentRequest {
  QString id;
  QString app;
  QString origin;
  QList<RequestedFile> files;
  QList<Attribution> attribution;
  // The asker was already told the files are not here (policy
  // "ask-later"): the question is whether to allow it from now on.
  bool deferred = false;

  // Reads the request as ConsentAgent1 defines it. Accepts nested aa{sv}
  // both as they arrive from QtDBus (QDBusArgument) and as plain
  // QList<QVariantMap> / QVariantList (built in tests). Unknown keys are
  // ignored; *error says what is missing or malformed.
  static bool FromVariantMap(const QVariantMap& map, ConsentRequest* out, QString* error);
  QVariantMap ToVariantMap() const;
};

// The decisions of ConsentAgent1.RequestConsent.
inline constexpr char kAllowOnce[] = "allow-once";
inline constexpr char kAllowAlways[] = "allow-always";
inline constexpr char kDeny[] = "deny";

// Registers QList<QVariantMap> (aa{sv}) with QtDBus; call before any D-Bus use.
void RegisterDBusTypes();

// aa{sv} from a QVariant holding a QDBusArgument, a QList<QVariantMap> or a
// QVariantList of maps. false if it holds something else.
bool ToMapList(const QVariant& value, QList<QVariantMap>* out);

}  // namespace costore::ui
