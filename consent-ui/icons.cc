#include "consent-ui/icons.h"

#include <QCryptographicHash>
#include <QFont>
#include <QLinearGradient>
#include <QPainter>
#include <QPainterPath>

namespace costore::ui {
namespace {

QPixmap Canvas(int size) {
  QPixmap pixmap(size, size);
  pixmap.fill(Qt::transparent);
  return pixmap;
}

// One layer of the mark: a flat rhombus centred at (cx, cy).
QPainterPath Layer(qreal cx, qreal cy, qreal half_width, qreal half_height) {
  QPainterPath path;
  path.moveTo(cx, cy - half_height);
  path.lineTo(cx + half_width, cy);
  path.lineTo(cx, cy + half_height);
  path.lineTo(cx - half_width, cy);
  path.closeSubpath();
  return path;
}

QPixmap DrawLogo(int size) {
  QPixmap pixmap = Canvas(size);
  QPainter p(&pixmap);
  p.setRenderHint(QPainter::Antialiasing);
  const qreal s = size / 64.0;
  QLinearGradient tile(0, 0, 0, size);
  tile.setColorAt(0, QColor(0x63, 0x66, 0xf1));
  tile.setColorAt(1, QColor(0x43, 0x38, 0xca));
  p.setPen(Qt::NoPen);
  p.setBrush(tile);
  p.drawRoundedRect(QRectF(2 * s, 2 * s, 60 * s, 60 * s), 14 * s, 14 * s);
  // Three layers, back to front: one store, many users.
  const QColor colors[] = {QColor(255, 255, 255, 110), QColor(255, 255, 255, 175), QColor(255, 255, 255)};
  const qreal ys[] = {42, 34, 26};
  for (int i = 0; i < 3; ++i) {
    p.setBrush(colors[i]);
    p.drawPath(Layer(32 * s, ys[i] * s, 20 * s, 10 * s));
  }
  return pixmap;
}

QPixmap DrawGenericApp(int size) {
  QPixmap pixmap = Canvas(size);
  QPainter p(&pixmap);
  p.setRenderHint(QPainter::Antialiasing);
  const qreal s = size / 64.0;
  p.setPen(QPen(QColor(0x5e, 0x5c, 0x64), 2 * s));
  p.setBrush(QColor(0xf6, 0xf5, 0xf4));
  const QRectF window(6 * s, 10 * s, 52 * s, 44 * s);
  p.drawRoundedRect(window, 6 * s, 6 * s);
  p.setPen(Qt::NoPen);
  p.setBrush(QColor(0x9a, 0x99, 0x96));
  p.drawRoundedRect(QRectF(6 * s, 10 * s, 52 * s, 10 * s), 6 * s, 6 * s);
  p.drawRect(QRectF(6 * s, 15 * s, 52 * s, 5 * s));
  return pixmap;
}

}  // namespace

QIcon AppLogo() {
  static const QIcon icon = [] {
    QIcon i;
    for (int size : {16, 22, 24, 32, 48, 64, 96, 128, 256}) i.addPixmap(DrawLogo(size));
    return i;
  }();
  return icon;
}

QIcon GenericAppIcon() {
  QIcon themed = QIcon::fromTheme(QStringLiteral("application-x-executable"));
  if (!themed.isNull()) return themed;
  static const QIcon drawn = [] {
    QIcon i;
    for (int size : {16, 24, 32, 48, 64, 128}) i.addPixmap(DrawGenericApp(size));
    return i;
  }();
  return drawn;
}

QPixmap SiteBadge(const QString& site, int size, qreal device_pixel_ratio) {
  const int pixels = qRound(size * device_pixel_ratio);
  QPixmap pixmap = Canvas(pixels);
  pixmap.setDevicePixelRatio(device_pixel_ratio);
  QPainter p(&pixmap);
  p.setRenderHint(QPainter::Antialiasing);
  p.setRenderHint(QPainter::TextAntialiasing);
  // A colour from the site's name: the same site always gets the same one.
  static const QColor palette[] = {
      QColor(0x1c, 0x71, 0xd8), QColor(0x26, 0xa2, 0x69), QColor(0xc6, 0x46, 0x00), QColor(0x81, 0x3d, 0x9c),
      QColor(0xa5, 0x1d, 0x2d), QColor(0x0e, 0x7c, 0x86), QColor(0x86, 0x5e, 0x3c), QColor(0x5e, 0x5c, 0xe4),
      QColor(0xb5, 0x83, 0x5a), QColor(0x2a, 0x7e, 0x19)};
  const QByteArray hash = QCryptographicHash::hash(site.toUtf8(), QCryptographicHash::Sha256);
  const auto index = static_cast<unsigned char>(hash[0]) % (sizeof(palette) / sizeof(palette[0]));
  p.setPen(Qt::NoPen);
  p.setBrush(palette[index]);
  p.drawRoundedRect(QRectF(0, 0, size, size), size * 0.22, size * 0.22);
  QString letter;
  for (const QChar c : site) {
    if (c.isLetterOrNumber()) {
      letter = c.toUpper();
      break;
    }
  }
  if (letter.isEmpty()) letter = QStringLiteral("?");
  QFont font = p.font();
  font.setBold(true);
  font.setPixelSize(qMax(8, qRound(size * 0.5)));
  p.setFont(font);
  p.setPen(Qt::white);
  p.drawText(QRectF(0, 0, size, size), Qt::AlignCenter, letter);
  return pixmap;
}

}  // namespace costore::ui
