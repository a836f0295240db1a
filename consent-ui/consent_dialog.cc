#include "consent-ui/consent_dialog.h"

#include <QDateTime>
#include <QFontDatabase>
#include <QFrame>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QScrollArea>
#include <QSet>
#include <QShowEvent>
#include <QTimer>
#include <QVBoxLayout>

#include "consent-ui/display.h"
#include "consent-ui/icons.h"
#include "consent-ui/labels.h"

namespace costore::ui {
namespace {

int g_arm_delay_ms = 700;

// How much smaller the dialog's secondary lines are.
constexpr qreal kSecondaryScale = 0.9;

// "other sites", "other apps" or "other sites and apps", after who stored
// the files.
QString Storers(const QList<Attribution>& attribution) {
  bool sites = false;
  bool apps = false;
  for (const auto& a : attribution) {
    if (!a.stored) continue;
    (a.origin.isEmpty() ? apps : sites) = true;
  }
  if (sites && apps) return QStringLiteral("other sites and apps");
  if (apps) return QStringLiteral("other apps");
  return QStringLiteral("other sites");
}

struct AttributionLines {
  QString stored_by;  // "huggingface.co (chromium), ollama"
  QString used_by;    // "2 sites · most recently 5 hours ago"
};

AttributionLines DescribeAttribution(const QList<Attribution>& attribution) {
  AttributionLines lines;
  if (attribution.isEmpty()) {
    lines.stored_by = QStringLiteral("no record of who stored it");
    return lines;
  }
  QStringList stored_by;
  // A site is counted once, whichever browsers it used; an app acting for
  // itself counts as one app.
  QSet<QString> sites;
  QSet<QString> apps;
  qint64 last_used = 0;
  for (const auto& a : attribution) {
    if (a.origin.isEmpty()) {
      apps.insert(a.app);
    } else {
      sites.insert(a.origin);
    }
    last_used = qMax(last_used, a.last_used_us);
    if (a.stored) {
      const QString who = DescribePrincipal(a.app, a.origin);
      if (!stored_by.contains(who)) stored_by << who;
    }
  }
  constexpr int kShown = 3;
  QStringList shown = stored_by.mid(0, kShown);
  if (stored_by.size() > kShown) shown << QStringLiteral("%1 more").arg(stored_by.size() - kShown);
  lines.stored_by = shown.isEmpty() ? QStringLiteral("no record of who stored it") : shown.join(QStringLiteral(", "));
  QStringList used_by;
  if (!sites.isEmpty()) used_by << CountText(sites.size(), "site", "sites");
  if (!apps.isEmpty()) used_by << CountText(apps.size(), "app", "apps");
  lines.used_by = used_by.join(QStringLiteral(" and "));
  if (last_used > 0) lines.used_by += QStringLiteral(" · last used %1").arg(FormatWhen(last_used));
  return lines;
}

QWidget* FileRow(const RequestedFile& file, QWidget* parent) {
  auto* row = new QWidget(parent);
  row->setObjectName(QStringLiteral("file"));
  auto* grid = new QGridLayout(row);
  grid->setContentsMargins(0, 0, 0, 0);
  grid->setHorizontalSpacing(12);
  grid->setVerticalSpacing(1);
  const QString name = Sanitize(file.name);
  auto* leaf = PlainLabel(name.isEmpty() ? QStringLiteral("Unnamed file") : NameLeaf(name), "fileName", row);
  QFont bold = leaf->font();
  bold.setBold(true);
  leaf->setFont(bold);
  auto* size = PlainLabel(FormatSize(file.size), "fileSize", row);
  size->setAlignment(Qt::AlignRight | Qt::AlignVCenter);
  grid->addWidget(leaf, 0, 0);
  grid->addWidget(size, 0, 1);
  int line = 1;
  if (!name.isEmpty() && NameLeaf(name) != name) {
    auto* hint = PlainLabel(Breakable(name), "fileHint", row);
    hint->setWordWrap(true);
    hint->setAccessibleName(name);
    MakeSecondary(hint, kSecondaryScale);
    grid->addWidget(hint, line++, 0, 1, 2);
  }
  auto* digest = PlainLabel(ShortDigest(file.digest), "fileDigest", row);
  digest->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  MakeSecondary(digest, 0.85);
  digest->setToolTip(Sanitize(file.digest));
  digest->setTextInteractionFlags(Qt::TextSelectableByMouse);
  grid->addWidget(digest, line, 0, 1, 2);
  grid->setColumnStretch(0, 1);
  return row;
}

}  // namespace

void ConsentDialog::setArmDelayMs(int ms) { g_arm_delay_ms = qMax(0, ms); }
int ConsentDialog::armDelayMs() { return g_arm_delay_ms; }

ConsentDialog::ConsentDialog(const ConsentRequest& request, QWidget* parent)
    : QDialog(parent), request_(request) {
  setObjectName(QStringLiteral("ConsentDialog"));
  setAttribute(Qt::WA_DeleteOnClose, false);
  setWindowIcon(AppLogo());

  const bool for_site = !request_.origin.isEmpty();
  const SiteDisplay site = DescribeOrigin(request_.origin);
  const AppDisplay app = DescribeApp(request_.app);
  const QString who = for_site ? Sanitize(site.site) : app.name;
  const QString files_phrase = request_.files.size() == 1
                                   ? QStringLiteral("a model file")
                                   : QStringLiteral("%1 model files").arg(request_.files.size());
  setWindowTitle(request_.deferred ? QStringLiteral("Allow %1 to use %2 from now on?").arg(who, files_phrase)
                                   : QStringLiteral("Allow %1 to use %2?").arg(who, files_phrase));

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(24, 22, 24, 18);
  layout->setSpacing(14);

  // Who asks: the registrable domain, large; the full origin under it, so
  // that "login.huggingface.co.evil.example" reads as evil.example.
  auto* header = new QHBoxLayout;
  header->setSpacing(14);
  auto* badge = new QLabel(this);
  badge->setObjectName(QStringLiteral("badge"));
  const qreal dpr = devicePixelRatioF();
  badge->setPixmap(for_site ? SiteBadge(who, 48, dpr) : app.icon.pixmap(QSize(48, 48), dpr));
  badge->setAlignment(Qt::AlignTop);
  header->addWidget(badge, 0, Qt::AlignTop);
  auto* names = new QVBoxLayout;
  names->setSpacing(2);
  auto* site_label = PlainLabel(who, "site", this);
  QFont big = site_label->font();
  big.setPointSizeF(big.pointSizeF() * 1.6);
  big.setBold(true);
  site_label->setFont(big);
  site_label->setWordWrap(true);
  names->addWidget(site_label);
  const QString subtitle = for_site ? Sanitize(request_.origin) : Sanitize(request_.app);
  auto* origin_label = PlainLabel(Breakable(subtitle), "origin", this);
  origin_label->setAccessibleName(subtitle);
  origin_label->setToolTip(subtitle);
  origin_label->setWordWrap(true);
  origin_label->setTextInteractionFlags(Qt::TextSelectableByMouse);
  MakeSecondary(origin_label, kSecondaryScale);
  names->addWidget(origin_label);
  if (for_site && !site.secure) {
    auto* insecure = PlainLabel(QStringLiteral("Not a secure connection: this page was not loaded over HTTPS."),
                                "insecure", this);
    insecure->setWordWrap(true);
    QPalette palette = insecure->palette();
    palette.setColor(QPalette::WindowText, QColor(0xc0, 0x1c, 0x28));
    insecure->setPalette(palette);
    names->addWidget(insecure);
  }
  header->addLayout(names, 1);
  layout->addLayout(header);

  auto* headline = PlainLabel(QStringLiteral("%1 wants to use %2 stored by %3.")
                                  .arg(who, files_phrase, Storers(request_.attribution)),
                              "headline", this);
  QFont headline_font = headline->font();
  headline_font.setPointSizeF(headline_font.pointSizeF() * 1.1);
  headline_font.setWeight(QFont::DemiBold);
  headline->setFont(headline_font);
  headline->setWordWrap(true);
  layout->addWidget(headline);

  // Through which app. The name is what the kernel told the daemon (the
  // executable, the flatpak or snap id), never a .desktop file's Name=.
  auto* app_row = new QHBoxLayout;
  app_row->setSpacing(8);
  auto* app_icon = new QLabel(this);
  app_icon->setObjectName(QStringLiteral("appIcon"));
  app_icon->setPixmap(app.icon.pixmap(QSize(20, 20), dpr));
  auto* via = PlainLabel(for_site ? QStringLiteral("Asking through") : QStringLiteral("App"), "via", this);
  MakeSecondary(via, 1.0);
  app_row->addWidget(via);
  app_row->addWidget(app_icon);
  QString app_text = app.name;
  if (!app.kind.isEmpty()) app_text += QStringLiteral(" (%1)").arg(app.kind);
  auto* app_label = PlainLabel(app_text, "app", this);
  app_label->setToolTip(Sanitize(request_.app));
  app_row->addWidget(app_label);
  if (for_site && request_.app.startsWith(QLatin1Char('/'))) {
    auto* app_path = PlainLabel(Sanitize(request_.app), "appPath", this);
    MakeSecondary(app_path, kSecondaryScale);
    app_row->addWidget(app_path);
  }
  app_row->addStretch(1);
  layout->addLayout(app_row);

  // The files.
  auto* files_frame = new QFrame(this);
  files_frame->setObjectName(QStringLiteral("files"));
  files_frame->setFrameShape(QFrame::StyledPanel);
  files_frame->setAutoFillBackground(true);
  QPalette files_palette = files_frame->palette();
  files_palette.setColor(QPalette::Window, files_palette.color(QPalette::Base));
  files_frame->setPalette(files_palette);
  auto* files_layout = new QVBoxLayout(files_frame);
  files_layout->setContentsMargins(14, 10, 14, 10);
  files_layout->setSpacing(10);
  for (const auto& file : request_.files) files_layout->addWidget(FileRow(file, files_frame));
  if (request_.files.size() > 3) {
    auto* scroll = new QScrollArea(this);
    scroll->setWidget(files_frame);
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    scroll->setMinimumHeight(200);
    scroll->setMaximumHeight(240);
    layout->addWidget(scroll);
  } else {
    layout->addWidget(files_frame);
  }

  // Who else has these files.
  const AttributionLines who_else = DescribeAttribution(request_.attribution);
  auto* attribution = new QGridLayout;
  attribution->setHorizontalSpacing(12);
  attribution->setVerticalSpacing(4);
  auto* stored_caption = PlainLabel(QStringLiteral("Stored by"), "storedByCaption", this);
  auto* used_caption = PlainLabel(QStringLiteral("Used by"), "usedByCaption", this);
  for (QLabel* caption : {stored_caption, used_caption}) {
    MakeSecondary(caption, 1.0);
    caption->setAlignment(Qt::AlignLeft | Qt::AlignTop);
  }
  auto* stored_by = PlainLabel(who_else.stored_by, "storedBy", this);
  auto* used_by = PlainLabel(who_else.used_by, "usedBy", this);
  stored_by->setWordWrap(true);
  used_by->setWordWrap(true);
  attribution->addWidget(stored_caption, 0, 0);
  attribution->addWidget(stored_by, 0, 1);
  attribution->addWidget(used_caption, 1, 0);
  attribution->addWidget(used_by, 1, 1);
  used_caption->setVisible(!who_else.used_by.isEmpty());
  used_by->setVisible(!who_else.used_by.isEmpty());
  attribution->setColumnStretch(1, 1);
  layout->addLayout(attribution);

  auto* note = PlainLabel(
      for_site ? QStringLiteral("If you allow it, %1 can read %2 and learn that %3 already on this computer.")
                     .arg(who, request_.files.size() == 1 ? QStringLiteral("this file") : QStringLiteral("these files"),
                          request_.files.size() == 1 ? QStringLiteral("it is") : QStringLiteral("they are"))
               : QStringLiteral("If you allow it, %1 can read %2.")
                     .arg(who, request_.files.size() == 1 ? QStringLiteral("this file") : QStringLiteral("these files")),
      "privacyNote", this);
  if (request_.deferred) {
    // Policy "ask-later": the asker was answered already.
    note->setText(QStringLiteral("%1 was told that %2 not on this computer. If you allow it, it can read %3 "
                                 "the next time it asks, and learn that %4 here.")
                      .arg(who, request_.files.size() == 1 ? QStringLiteral("this file is") : QStringLiteral("these files are"),
                           request_.files.size() == 1 ? QStringLiteral("it") : QStringLiteral("them"),
                           request_.files.size() == 1 ? QStringLiteral("it is") : QStringLiteral("they are")));
  }
  note->setWordWrap(true);
  MakeSecondary(note, kSecondaryScale);
  layout->addWidget(note);

  waiting_ = PlainLabel(QString(), "waiting", this);
  MakeSecondary(waiting_, kSecondaryScale);
  waiting_->hide();
  layout->addWidget(waiting_);

  layout->addSpacing(4);
  auto* buttons = new QHBoxLayout;
  buttons->setSpacing(8);
  deny_ = new QPushButton(QStringLiteral("Deny"), this);
  deny_->setObjectName(QStringLiteral("deny"));
  allow_once_ = new QPushButton(QStringLiteral("Allow once"), this);
  allow_once_->setObjectName(QStringLiteral("allowOnce"));
  allow_always_ = new QPushButton(
      for_site ? QStringLiteral("Always allow for this site") : QStringLiteral("Always allow for this app"), this);
  allow_always_->setObjectName(QStringLiteral("allowAlways"));
  // Enter must never allow: the allow buttons are not (auto-)default, and
  // Deny is the default button, which also has the focus.
  for (QPushButton* allow : {allow_once_, allow_always_}) {
    allow->setAutoDefault(false);
    allow->setDefault(false);
    allow->setEnabled(false);
  }
  deny_->setAutoDefault(true);
  deny_->setDefault(true);
  buttons->addWidget(deny_);
  buttons->addStretch(1);
  buttons->addWidget(allow_once_);
  buttons->addWidget(allow_always_);
  // Nothing is left to allow once when the asker was answered already.
  allow_once_->setVisible(!request_.deferred);
  layout->addLayout(buttons);

  connect(deny_, &QPushButton::clicked, this, [this] { decide(kDeny); });
  connect(allow_once_, &QPushButton::clicked, this, [this] { decide(kAllowOnce); });
  connect(allow_always_, &QPushButton::clicked, this, [this] { decide(kAllowAlways); });

  arm_timer_ = new QTimer(this);
  arm_timer_->setSingleShot(true);
  connect(arm_timer_, &QTimer::timeout, this, &ConsentDialog::arm);

  setMinimumWidth(540);
  setMaximumWidth(640);
  deny_->setFocus(Qt::OtherFocusReason);
}

ConsentDialog::~ConsentDialog() {
  if (!emitted_) {
    emitted_ = true;
    if (decision_.isEmpty()) decision_ = QLatin1String(kDeny);
    Q_EMIT decided(decision_);
  }
}

void ConsentDialog::setWaitingCount(int waiting) {
  waiting_->setVisible(waiting > 0);
  waiting_->setText(waiting == 1 ? QStringLiteral("1 more request is waiting.")
                                 : QStringLiteral("%1 more requests are waiting.").arg(waiting));
}

void ConsentDialog::cancel() {
  if (emitted_) return;
  cancelled_ = true;
  decision_ = QLatin1String(kDeny);
  QDialog::done(QDialog::Rejected);
  emitted_ = true;
  Q_EMIT decided(decision_);
}

void ConsentDialog::showEvent(QShowEvent* event) {
  QDialog::showEvent(event);
  if (!armed_ && !arm_timer_->isActive()) arm_timer_->start(g_arm_delay_ms);
  deny_->setFocus(Qt::OtherFocusReason);
  raise();
  activateWindow();
}

void ConsentDialog::arm() {
  if (armed_ || emitted_) return;
  armed_ = true;
  allow_once_->setEnabled(true);
  allow_always_->setEnabled(true);
  Q_EMIT armed();
}

void ConsentDialog::decide(const char* decision) {
  if (emitted_) return;
  decision_ = QLatin1String(decision);
  if (decision_ == QLatin1String(kDeny)) {
    reject();
  } else {
    accept();
  }
}

void ConsentDialog::done(int result) {
  // Esc and closing the window reject() without a decision: that is Deny.
  if (decision_.isEmpty()) decision_ = QLatin1String(kDeny);
  QDialog::done(result);
  if (!emitted_) {
    emitted_ = true;
    Q_EMIT decided(decision_);
  }
}

}  // namespace costore::ui
