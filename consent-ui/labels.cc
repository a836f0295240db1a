#include "consent-ui/labels.h"

#include <QFont>
#include <QPalette>

namespace costore::ui {

QLabel* PlainLabel(const QString& text, const char* object_name, QWidget* parent) {
  auto* label = new QLabel(parent);
  // Everything shown here comes from other programs: never let QLabel guess
  // that it is rich text.
  label->setTextFormat(Qt::PlainText);
  label->setText(text);
  label->setObjectName(QLatin1String(object_name));
  return label;
}

void MakeSecondary(QWidget* widget, qreal scale) {
  QPalette palette = widget->palette();
  palette.setColor(QPalette::WindowText, palette.color(QPalette::PlaceholderText));
  widget->setPalette(palette);
  QFont font = widget->font();
  font.setPointSizeF(font.pointSizeF() * scale);
  widget->setFont(font);
}

QString CountText(qsizetype n, const char* one, const char* many) {
  return n == 1 ? QStringLiteral("1 %1").arg(QLatin1String(one)) : QStringLiteral("%1 %2").arg(n).arg(QLatin1String(many));
}

}  // namespace costore::ui
