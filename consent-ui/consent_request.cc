#include "consent-ui/consent_request.h"

#include <QDBusArgument>
#include <QDBusMetaType>

#include <limits>
#include <type_traits>

namespace costore::ui {

void RegisterDBusTypes() {
  static const bool registered = [] {
    qDBusRegisterMetaType<QList<QVariantMap>>();
    return true;
  }();
  (void)registered;
}

bool ToMapList(const QVariant& value, QList<QVariantMap>* out) {
  out->clear();
  if (value.metaType() == QMetaType::fromType<QDBusArgument>()) {
    const QDBusArgument arg = value.value<QDBusArgument>();
    if (arg.currentSignature() != QLatin1String("aa{sv}")) return false;
    *out = qdbus_cast<QList<QVariantMap>>(arg);
    return true;
  }
  if (value.metaType() == QMetaType::fromType<QList<QVariantMap>>()) {
    *out = value.value<QList<QVariantMap>>();
    return true;
  }
  if (value.metaType() == QMetaType::fromType<QVariantList>()) {
    for (const QVariant& item : value.toList()) {
      if (item.metaType() != QMetaType::fromType<QVariantMap>()) return false;
      out->append(item.toMap());
    }
    return true;
  }
  return false;
}

namespace {

template <typename T>
bool Take(const QVariantMap& map, const char* key, T* out, QString* error, bool required = true) {
  const auto it = map.constFind(QLatin1String(key));
  if (it == map.constEnd()) {
    if (required) *error = QStringLiteral("\"%1\" is missing").arg(QLatin1String(key));
    return !required;
  }
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // Any D-Bus integer type will do, as long as the value fits.
    switch (it->metaType().id()) {
      case QMetaType::UChar:
      case QMetaType::Short:
      case QMetaType::UShort:
      case QMetaType::Int:
      case QMetaType::UInt:
      case QMetaType::LongLong:
      case QMetaType::ULongLong: {
        if (it->metaType().id() == QMetaType::ULongLong) {
          const qulonglong v = it->toULongLong();
          if (v > static_cast<qulonglong>(std::numeric_limits<T>::max())) break;
          *out = static_cast<T>(v);
          return true;
        }
        const qlonglong v = it->toLongLong();
        if (v < 0 && std::is_unsigned_v<T>) break;
        if (v > 0 && static_cast<qulonglong>(v) > static_cast<qulonglong>(std::numeric_limits<T>::max())) break;
        if constexpr (std::is_signed_v<T>) {
          if (v < static_cast<qlonglong>(std::numeric_limits<T>::min())) break;
        }
        *out = static_cast<T>(v);
        return true;
      }
      default:
        break;
    }
  } else if (it->metaType() == QMetaType::fromType<T>()) {
    *out = it->value<T>();
    return true;
  }
  *error = QStringLiteral("\"%1\" has type %2").arg(QLatin1String(key), QLatin1String(it->typeName()));
  return false;
}

}  // namespace

bool ConsentRequest::FromVariantMap(const QVariantMap& map, ConsentRequest* out, QString* error) {
  ConsentRequest r;
  if (!Take(map, "id", &r.id, error) || !Take(map, "app", &r.app, error) ||
      !Take(map, "origin", &r.origin, error)) {
    return false;
  }
  if (r.id.isEmpty()) {
    *error = QStringLiteral("\"id\" is empty");
    return false;
  }
  if (!Take(map, "deferred", &r.deferred, error, false)) return false;
  QList<QVariantMap> files;
  if (!ToMapList(map.value(QStringLiteral("files")), &files)) {
    *error = QStringLiteral("\"files\" is missing or not aa{sv}");
    return false;
  }
  for (const QVariantMap& f : files) {
    RequestedFile file;
    if (!Take(f, "digest", &file.digest, error) || !Take(f, "name", &file.name, error, false) ||
        !Take(f, "size", &file.size, error, false)) {
      *error = QStringLiteral("files: ") + *error;
      return false;
    }
    r.files << file;
  }
  if (r.files.isEmpty()) {
    *error = QStringLiteral("\"files\" is empty");
    return false;
  }
  if (map.contains(QStringLiteral("attribution"))) {
    QList<QVariantMap> attribution;
    if (!ToMapList(map.value(QStringLiteral("attribution")), &attribution)) {
      *error = QStringLiteral("\"attribution\" is not aa{sv}");
      return false;
    }
    for (const QVariantMap& a : attribution) {
      Attribution who;
      if (!Take(a, "app", &who.app, error) || !Take(a, "origin", &who.origin, error, false) ||
          !Take(a, "stored", &who.stored, error, false) || !Take(a, "reads", &who.reads, error, false) ||
          !Take(a, "stores", &who.stores, error, false) ||
          !Take(a, "last-used", &who.last_used_us, error, false)) {
        *error = QStringLiteral("attribution: ") + *error;
        return false;
      }
      r.attribution << who;
    }
  }
  *out = std::move(r);
  return true;
}

QVariantMap ConsentRequest::ToVariantMap() const {
  QList<QVariantMap> file_maps;
  for (const auto& f : files) {
    file_maps << QVariantMap{{QStringLiteral("digest"), f.digest},
                             {QStringLiteral("name"), f.name},
                             {QStringLiteral("size"), QVariant::fromValue<qulonglong>(f.size)}};
  }
  QList<QVariantMap> attribution_maps;
  for (const auto& a : attribution) {
    attribution_maps << QVariantMap{{QStringLiteral("app"), a.app},
                                    {QStringLiteral("origin"), a.origin},
                                    {QStringLiteral("stored"), a.stored},
                                    {QStringLiteral("reads"), QVariant::fromValue<quint32>(a.reads)},
                                    {QStringLiteral("stores"), QVariant::fromValue<quint32>(a.stores)},
                                    {QStringLiteral("last-used"), QVariant::fromValue<qlonglong>(a.last_used_us)}};
  }
  return {{QStringLiteral("id"), id},
          {QStringLiteral("app"), app},
          {QStringLiteral("origin"), origin},
          {QStringLiteral("deferred"), deferred},
          {QStringLiteral("files"), QVariant::fromValue(file_maps)},
          {QStringLiteral("attribution"), QVariant::fromValue(attribution_maps)}};
}

}  // namespace costore::ui
