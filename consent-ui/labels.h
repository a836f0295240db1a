// Labels as the consent dialog and the manager window draw them: plain
// text only, and a quieter style for secondary lines.
#pragma once

#include <QLabel>
#include <QString>
#include <QWidget>

namespace costore::ui {

// A label that shows `text` as plain text, never as rich text: what it
// shows comes from other programs.
QLabel* PlainLabel(const QString& text, const char* object_name, QWidget* parent);

// Greys the widget's text (the palette's placeholder colour) and scales
// its font by `scale`.
void MakeSecondary(QWidget* widget, qreal scale);

// "1 file", "3 files".
QString CountText(qsizetype n, const char* one, const char* many);

}  // namespace costore::ui
