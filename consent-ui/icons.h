// Icons drawn in code: the build has no SVG renderer to rely on (Qt's SVG
// module is optional), and these must look the same everywhere.
#pragma once

#include <QIcon>
#include <QPixmap>
#include <QString>

namespace costore::ui {

// The costore mark: stacked layers on an indigo tile (the same drawing as
// io.github.costore.Consent.svg).
QIcon AppLogo();

// The icon theme's application-x-executable, else a drawn window.
QIcon GenericAppIcon();

// A monogram tile for a site ("e" on a colour derived from "evil.example"),
// as browsers draw for sites without a favicon.
QPixmap SiteBadge(const QString& site, int size, qreal device_pixel_ratio = 1.0);

}  // namespace costore::ui
