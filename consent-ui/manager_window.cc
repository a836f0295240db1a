#include "consent-ui/manager_window.h"

#include <QComboBox>
#include <QFontDatabase>
#include <QFormLayout>
#include <QFrame>
#include <QHBoxLayout>
#include <QHash>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QMap>
#include <QMessageBox>
#include <QPushButton>
#include <QSet>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableView>
#include <QTimer>
#include <QTreeWidget>
#include <QVBoxLayout>

#include <algorithm>

#include "consent-ui/display.h"
#include "consent-ui/icons.h"
#include "consent-ui/labels.h"

namespace costore::ui {
namespace {

template <typename T>
T Get(const QVariantMap& map, const char* key) {
  const QVariant v = map.value(QLatin1String(key));
  return v.canConvert<T>() ? v.value<T>() : T{};
}

// How much smaller the window's secondary lines are.
constexpr qreal kSecondaryScale = 0.92;

QString UsedByText(const FileRow& row) {
  if (!row.usage_known) return CountText(static_cast<int>(row.used_by), "site or app", "sites and apps");
  QStringList parts;
  if (row.sites > 0) parts << CountText(row.sites, "site", "sites");
  if (row.apps > 0) parts << CountText(row.apps, "app", "apps");
  return parts.isEmpty() ? QStringLiteral("nobody") : parts.join(QStringLiteral(", "));
}

QString DisplayName(const QString& name) {
  const QString clean = Sanitize(name);
  return clean.isEmpty() ? QStringLiteral("Unnamed file") : NameLeaf(clean);
}

QString ErrorText(const QDBusError& error) {
  QString text = error.message();
  if (text.isEmpty()) text = error.name();
  return Sanitize(text);
}

bool DefaultConfirm(QWidget* parent, const QString& title, const QString& text, const QString& action) {
  QMessageBox box(QMessageBox::Warning, title, text, QMessageBox::NoButton, parent);
  box.setTextFormat(Qt::PlainText);
  QPushButton* go = box.addButton(action, QMessageBox::DestructiveRole);
  QPushButton* cancel = box.addButton(QMessageBox::Cancel);
  box.setDefaultButton(cancel);
  box.setEscapeButton(cancel);
  box.exec();
  return box.clickedButton() == go;
}

}  // namespace

// --- FilesModel -------------------------------------------------------------

void FilesModel::setRows(QList<FileRow> rows) {
  beginResetModel();
  rows_ = std::move(rows);
  endResetModel();
}

int FilesModel::rowOf(const QString& digest) const {
  for (int i = 0; i < rows_.size(); ++i) {
    if (rows_.at(i).digest == digest) return i;
  }
  return -1;
}

int FilesModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int FilesModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : kColumnCount; }

QVariant FilesModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rows_.size()) return {};
  const FileRow& row = rows_.at(index.row());
  if (role == kDigestRole) return row.digest;
  switch (index.column()) {
    case kName:
      if (role == Qt::DisplayRole) return DisplayName(row.name);
      if (role == Qt::ToolTipRole) return row.name.isEmpty() ? QVariant() : Sanitize(row.name);
      if (role == kSortRole) return DisplayName(row.name).toLower();
      break;
    case kSize:
      if (role == Qt::DisplayRole) return FormatSize(row.size);
      if (role == Qt::ToolTipRole) return QStringLiteral("%1 bytes").arg(row.size);
      if (role == kSortRole) return QVariant::fromValue<qulonglong>(row.size);
      if (role == Qt::TextAlignmentRole) return QVariant::fromValue(Qt::AlignRight | Qt::AlignVCenter);
      break;
    case kVisibility:
      if (role == Qt::DisplayRole || role == kSortRole) {
        return row.is_private ? QStringLiteral("Private") : QStringLiteral("Public");
      }
      if (role == Qt::ToolTipRole) {
        return row.is_private ? QStringLiteral("Encrypted on disk; only who stored it, and whom you allow, can read it")
                              : QStringLiteral("Any site or app may ask you for it");
      }
      break;
    case kStoredBy:
      if (role == Qt::DisplayRole || role == kSortRole) {
        if (row.stored_by.isEmpty()) return QStringLiteral("—");
        return row.stored_by.size() <= 2 ? row.stored_by.join(QStringLiteral(", "))
                                         : QStringLiteral("%1, +%2").arg(row.stored_by.first()).arg(row.stored_by.size() - 1);
      }
      if (role == Qt::ToolTipRole) return row.stored_by.join(QLatin1Char('\n'));
      break;
    case kUsedBy:
      if (role == Qt::DisplayRole) return UsedByText(row);
      if (role == kSortRole) return row.usage_known ? row.sites + row.apps : static_cast<int>(row.used_by);
      break;
    case kLastUsed:
      if (role == Qt::DisplayRole) return FormatWhen(row.last_used_us);
      if (role == Qt::ToolTipRole && row.last_used_us > 0) {
        return QDateTime::fromMSecsSinceEpoch(row.last_used_us / 1000).toString(Qt::TextDate);
      }
      if (role == kSortRole) return QVariant::fromValue<qlonglong>(row.last_used_us);
      break;
    case kDigest:
      if (role == Qt::DisplayRole) return ShortDigest(row.digest);
      if (role == Qt::ToolTipRole || role == kSortRole) return Sanitize(row.digest);
      if (role == Qt::FontRole) return QFontDatabase::systemFont(QFontDatabase::FixedFont);
      break;
    default:
      break;
  }
  return {};
}

QVariant FilesModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case kName: return QStringLiteral("File");
    case kSize: return QStringLiteral("Size");
    case kVisibility: return QStringLiteral("Visibility");
    case kStoredBy: return QStringLiteral("Stored by");
    case kUsedBy: return QStringLiteral("Used by");
    case kLastUsed: return QStringLiteral("Last used");
    case kDigest: return QStringLiteral("Digest");
    default: return {};
  }
}

// --- ManagerWindow ----------------------------------------------------------

ManagerWindow::ManagerWindow(ManagerClient* client, QWidget* parent) : QMainWindow(parent), client_(client) {
  setObjectName(QStringLiteral("ManagerWindow"));
  setWindowTitle(QStringLiteral("Model files — costore"));
  setWindowIcon(AppLogo());
  confirm_ = [this](const QString& title, const QString& text, const QString& action) {
    return DefaultConfirm(this, title, text, action);
  };
  buildUi();

  refresh_timer_ = new QTimer(this);
  refresh_timer_->setSingleShot(true);
  refresh_timer_->setInterval(30);  // coalesces a burst of Changed signals
  connect(refresh_timer_, &QTimer::timeout, this, &ManagerWindow::refresh);
  connect(client_, &ManagerClient::changed, this, &ManagerWindow::scheduleRefresh);
  connect(client_, &ManagerClient::serviceAppeared, this, &ManagerWindow::scheduleRefresh);
  connect(client_, &ManagerClient::serviceVanished, this, [this] {
    showUnreachable(QDBusError(QDBusError::ServiceUnknown, QStringLiteral("costored stopped")));
  });
  resize(1000, 600);
  refresh();
}

ManagerWindow::~ManagerWindow() = default;

void ManagerWindow::buildUi() {
  auto* central = new QWidget(this);
  auto* layout = new QVBoxLayout(central);
  layout->setContentsMargins(16, 14, 16, 10);
  layout->setSpacing(12);

  // Header: what this is, and how much it holds.
  auto* header = new QHBoxLayout;
  header->setSpacing(12);
  auto* logo = new QLabel(central);
  logo->setPixmap(AppLogo().pixmap(QSize(40, 40), devicePixelRatioF()));
  header->addWidget(logo);
  auto* titles = new QVBoxLayout;
  titles->setSpacing(0);
  auto* title = PlainLabel(QStringLiteral("Model files"), "title", central);
  QFont title_font = title->font();
  title_font.setPointSizeF(title_font.pointSizeF() * 1.45);
  title_font.setBold(true);
  title->setFont(title_font);
  titles->addWidget(title);
  auto* subtitle = PlainLabel(QStringLiteral("One copy on this computer, shared by your browsers and apps"),
                              "subtitle", central);
  MakeSecondary(subtitle, kSecondaryScale);
  titles->addWidget(subtitle);
  header->addLayout(titles, 1);
  total_ = PlainLabel(QString(), "total", central);
  QFont total_font = total_->font();
  total_font.setPointSizeF(total_font.pointSizeF() * 1.05);
  total_font.setWeight(QFont::DemiBold);
  total_->setFont(total_font);
  total_->setAlignment(Qt::AlignRight | Qt::AlignVCenter);
  header->addWidget(total_);
  layout->addLayout(header);

  // The banner shown while the daemon cannot be reached.
  banner_ = new QFrame(central);
  banner_->setObjectName(QStringLiteral("errorBanner"));
  banner_->setFrameShape(QFrame::StyledPanel);
  banner_->setAutoFillBackground(true);
  QPalette banner_palette = banner_->palette();
  banner_palette.setColor(QPalette::Window, QColor(0xfd, 0xe8, 0xe8));
  banner_palette.setColor(QPalette::WindowText, QColor(0x8a, 0x10, 0x1a));
  banner_->setPalette(banner_palette);
  auto* banner_layout = new QHBoxLayout(banner_);
  banner_layout->setContentsMargins(12, 8, 8, 8);
  auto* banner_texts = new QVBoxLayout;
  banner_texts->setSpacing(2);
  banner_title_ = PlainLabel(QStringLiteral("Cannot reach costored, the service that keeps your model files"),
                             "errorTitle", banner_);
  QFont banner_font = banner_title_->font();
  banner_font.setBold(true);
  banner_title_->setFont(banner_font);
  banner_texts->addWidget(banner_title_);
  banner_text_ = PlainLabel(QString(), "errorText", banner_);
  banner_text_->setWordWrap(true);
  banner_texts->addWidget(banner_text_);
  banner_layout->addLayout(banner_texts, 1);
  auto* retry = new QPushButton(QStringLiteral("Try again"), banner_);
  retry->setObjectName(QStringLiteral("retry"));
  connect(retry, &QPushButton::clicked, this, &ManagerWindow::refresh);
  banner_layout->addWidget(retry, 0, Qt::AlignVCenter);
  banner_->hide();
  layout->addWidget(banner_);

  tabs_ = new QTabWidget(central);
  tabs_->setDocumentMode(false);
  tabs_->addTab(buildFilesTab(), QStringLiteral("Files"));
  tabs_->addTab(buildSitesTab(), QStringLiteral("Sites and apps"));
  tabs_->addTab(buildSettingsTab(), QStringLiteral("Settings"));
  layout->addWidget(tabs_, 1);

  message_ = PlainLabel(QString(), "message", central);
  message_->setWordWrap(true);
  statusBar()->addWidget(message_, 1);
  statusBar()->setSizeGripEnabled(false);
  message_timer_ = new QTimer(this);
  message_timer_->setSingleShot(true);
  connect(message_timer_, &QTimer::timeout, message_, &QLabel::clear);

  setCentralWidget(central);
  updateButtons();
}

QWidget* ManagerWindow::buildFilesTab() {
  auto* page = new QWidget(this);
  auto* layout = new QVBoxLayout(page);
  layout->setContentsMargins(10, 10, 10, 10);
  files_model_ = new FilesModel(this);
  files_proxy_ = new QSortFilterProxyModel(this);
  files_proxy_->setSourceModel(files_model_);
  files_proxy_->setSortRole(FilesModel::kSortRole);
  files_view_ = new QTableView(page);
  files_view_->setObjectName(QStringLiteral("files"));
  files_view_->setModel(files_proxy_);
  files_view_->setSelectionBehavior(QAbstractItemView::SelectRows);
  files_view_->setSelectionMode(QAbstractItemView::SingleSelection);
  files_view_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  files_view_->setAlternatingRowColors(true);
  files_view_->setShowGrid(false);
  files_view_->setSortingEnabled(true);
  files_view_->setWordWrap(false);
  files_view_->setTextElideMode(Qt::ElideMiddle);
  files_view_->verticalHeader()->hide();
  files_view_->verticalHeader()->setDefaultSectionSize(files_view_->fontMetrics().height() + 14);
  QHeaderView* header = files_view_->horizontalHeader();
  header->setHighlightSections(false);
  header->setDefaultAlignment(Qt::AlignLeft | Qt::AlignVCenter);
  header->setSectionResizeMode(QHeaderView::Interactive);
  header->setSectionResizeMode(FilesModel::kName, QHeaderView::Stretch);
  header->resizeSection(FilesModel::kSize, 80);
  header->resizeSection(FilesModel::kVisibility, 80);
  header->resizeSection(FilesModel::kStoredBy, 200);
  header->resizeSection(FilesModel::kUsedBy, 110);
  header->resizeSection(FilesModel::kLastUsed, 115);
  header->setSectionResizeMode(FilesModel::kDigest, QHeaderView::ResizeToContents);
  files_view_->sortByColumn(FilesModel::kName, Qt::AscendingOrder);
  layout->addWidget(files_view_, 1);
  connect(files_view_->selectionModel(), &QItemSelectionModel::selectionChanged, this, &ManagerWindow::updateButtons);

  auto* actions = new QHBoxLayout;
  delete_ = new QPushButton(QStringLiteral("Delete…"), page);
  delete_->setObjectName(QStringLiteral("delete"));
  delete_->setIcon(QIcon::fromTheme(QStringLiteral("user-trash")));
  connect(delete_, &QPushButton::clicked, this, &ManagerWindow::deleteSelectedFile);
  actions->addWidget(delete_);
  auto* hint = PlainLabel(QStringLiteral("Deleting a file frees its space; a site that needs it again downloads it again."),
                          "filesHint", page);
  MakeSecondary(hint, kSecondaryScale);
  actions->addWidget(hint, 1);
  layout->addLayout(actions);
  return page;
}

QWidget* ManagerWindow::buildSitesTab() {
  auto* page = new QWidget(this);
  auto* layout = new QVBoxLayout(page);
  layout->setContentsMargins(10, 10, 10, 10);
  sites_tree_ = new QTreeWidget(page);
  sites_tree_->setObjectName(QStringLiteral("sites"));
  sites_tree_->setColumnCount(3);
  sites_tree_->setHeaderLabels({QStringLiteral("Site, app or file"), QStringLiteral("Details"), QStringLiteral("Last used")});
  sites_tree_->setSelectionMode(QAbstractItemView::SingleSelection);
  sites_tree_->setAlternatingRowColors(true);
  sites_tree_->setUniformRowHeights(true);
  sites_tree_->setIconSize(QSize(20, 20));
  sites_tree_->setTextElideMode(Qt::ElideMiddle);
  sites_tree_->header()->setStretchLastSection(false);
  sites_tree_->header()->setSectionResizeMode(0, QHeaderView::Stretch);
  sites_tree_->header()->resizeSection(1, 330);
  sites_tree_->header()->resizeSection(2, 120);
  layout->addWidget(sites_tree_, 1);
  connect(sites_tree_, &QTreeWidget::itemSelectionChanged, this, &ManagerWindow::updateButtons);

  auto* actions = new QHBoxLayout;
  revoke_ = new QPushButton(QStringLiteral("Revoke permission"), page);
  revoke_->setObjectName(QStringLiteral("revoke"));
  connect(revoke_, &QPushButton::clicked, this, &ManagerWindow::revokeSelectedGrant);
  forget_ = new QPushButton(QStringLiteral("Forget site…"), page);
  forget_->setObjectName(QStringLiteral("forget"));
  connect(forget_, &QPushButton::clicked, this, &ManagerWindow::forgetSelectedSite);
  actions->addWidget(revoke_);
  actions->addWidget(forget_);
  auto* hint = PlainLabel(QStringLiteral("Forgetting a site removes its permissions and records, and the files only it stored."),
                          "sitesHint", page);
  MakeSecondary(hint, kSecondaryScale);
  actions->addWidget(hint, 1);
  layout->addLayout(actions);
  return page;
}

QWidget* ManagerWindow::buildSettingsTab() {
  auto* page = new QWidget(this);
  auto* outer = new QVBoxLayout(page);
  outer->setContentsMargins(18, 18, 18, 18);
  settings_pane_ = new QWidget(page);
  auto* form = new QFormLayout(settings_pane_);
  form->setContentsMargins(0, 0, 0, 0);
  form->setVerticalSpacing(12);
  form->setLabelAlignment(Qt::AlignRight | Qt::AlignVCenter);
  form->setFieldGrowthPolicy(QFormLayout::FieldsStayAtSizeHint);

  policy_ = new QComboBox(settings_pane_);
  policy_->setObjectName(QStringLiteral("consentPolicy"));
  policy_->addItem(QStringLiteral("Ask me"), QStringLiteral("ask"));
  policy_->addItem(QStringLiteral("Say it is not here, then ask me"), QStringLiteral("ask-later"));
  policy_->addItem(QStringLiteral("Deny without asking"), QStringLiteral("deny"));
  policy_->setMinimumWidth(220);
  connect(policy_, &QComboBox::activated, this, [this](int index) {
    if (!applying_settings_) setSetting(QStringLiteral("consent-policy"), policy_->itemData(index).toString());
  });
  form->addRow(QStringLiteral("When a site asks for a file others stored:"), policy_);

  timeout_ = new QSpinBox(settings_pane_);
  timeout_->setObjectName(QStringLiteral("consentTimeout"));
  timeout_->setRange(1, 3600);
  timeout_->setSuffix(QStringLiteral(" seconds"));
  timeout_->setMinimumWidth(140);
  connect(timeout_, &QSpinBox::editingFinished, this, [this] {
    if (!applying_settings_) setSetting(QStringLiteral("consent-timeout"), QVariant::fromValue<uint>(timeout_->value()));
  });
  form->addRow(QStringLiteral("Wait for my answer for:"), timeout_);

  prompts_ = new QSpinBox(settings_pane_);
  prompts_->setObjectName(QStringLiteral("promptsPerHour"));
  prompts_->setRange(0, 3600);
  prompts_->setSuffix(QStringLiteral(" per hour"));
  prompts_->setMinimumWidth(140);
  connect(prompts_, &QSpinBox::editingFinished, this, [this] {
    if (!applying_settings_) setSetting(QStringLiteral("prompts-per-hour"), QVariant::fromValue<uint>(prompts_->value()));
  });
  form->addRow(QStringLiteral("Questions one site may ask:"), prompts_);
  outer->addWidget(settings_pane_);

  settings_note_ = PlainLabel(
      QStringLiteral("Files a site stored itself, and files you always allowed, open without asking. "
                     "With “Deny without asking”, everything else is refused."),
      "settingsNote", page);
  settings_note_->setWordWrap(true);
  MakeSecondary(settings_note_, kSecondaryScale);
  outer->addSpacing(6);
  outer->addWidget(settings_note_);
  outer->addStretch(1);
  return page;
}

void ManagerWindow::scheduleRefresh() { refresh_timer_->start(); }

void ManagerWindow::showUnreachable(const QDBusError& error) {
  reachable_ = false;
  banner_text_->setText(QStringLiteral("%1 (%2 on the session bus). The lists come back as soon as it answers.")
                            .arg(ErrorText(error), client_->service()));
  banner_->show();
  files_model_->setRows({});
  sites_tree_->clear();
  total_->clear();
  tabs_->setEnabled(false);
  updateButtons();
}

void ManagerWindow::showMessage(const QString& text, bool error) {
  QPalette palette = message_->palette();
  palette.setColor(QPalette::WindowText, error ? QColor(0xc0, 0x1c, 0x28) : this->palette().color(QPalette::WindowText));
  message_->setPalette(palette);
  message_->setText(text);
  message_timer_->start(error ? 15000 : 6000);
}

void ManagerWindow::refresh() {
  refresh_timer_->stop();
  ++refresh_count_;
  const auto files = client_->list();
  if (!files.ok()) {
    showUnreachable(files.error);
    Q_EMIT refreshed();
    return;
  }
  reachable_ = true;
  banner_->hide();
  tabs_->setEnabled(true);

  const QString selected = selectedDigest();
  QList<FileRow> rows;
  QHash<QString, QList<QVariantMap>> usage_by_digest;
  quint64 total_bytes = 0;
  for (const QVariantMap& f : files.value) {
    FileRow row;
    row.digest = Get<QString>(f, "digest");
    row.name = Get<QString>(f, "name");
    row.size = Get<qulonglong>(f, "size");
    row.is_private = Get<bool>(f, "private");
    row.first_stored_us = Get<qlonglong>(f, "first-stored");
    row.last_used_us = Get<qlonglong>(f, "last-used");
    row.used_by = Get<uint>(f, "used-by");
    const auto usage = client_->usage(row.digest);
    if (usage.ok()) {
      usage_by_digest.insert(row.digest, usage.value);
      row.usage_known = true;
      QSet<QString> sites;
      QSet<QString> apps;
      for (const QVariantMap& u : usage.value) {
        const QString app = Get<QString>(u, "app");
        const QString origin = Get<QString>(u, "origin");
        // A site counts once, whichever browsers it used.
        if (origin.isEmpty()) {
          apps.insert(app);
        } else {
          sites.insert(origin);
        }
        if (Get<bool>(u, "stored")) {
          row.storer_origins << origin;
          const QString who = DescribePrincipal(app, origin);
          if (!row.stored_by.contains(who)) row.stored_by << who;
        }
      }
      row.sites = static_cast<int>(sites.size());
      row.apps = static_cast<int>(apps.size());
    }
    total_bytes += row.size;
    rows << row;
  }
  files_model_->setRows(rows);
  if (!selected.isEmpty()) selectFile(selected);
  total_->setText(rows.isEmpty() ? QStringLiteral("Nothing stored")
                                 : QStringLiteral("%1 · %2 on disk")
                                       .arg(CountText(static_cast<int>(rows.size()), "file", "files"), FormatSize(total_bytes)));

  const auto grants = client_->listGrants();
  if (!grants.ok()) showMessage(QStringLiteral("Could not read permissions: %1").arg(ErrorText(grants.error)), true);
  rebuildSites(grants.ok() ? grants.value : QList<QVariantMap>{}, usage_by_digest);
  applySettings(client_->getSettings());
  updateButtons();
  Q_EMIT refreshed();
}

void ManagerWindow::rebuildSites(const QList<QVariantMap>& grants, const QHash<QString, QList<QVariantMap>>& usage) {
  struct Access {
    bool stored = false;
    quint32 reads = 0;
    bool granted = false;
    qint64 last_used = 0;
  };
  // origin -> app -> digest -> access
  QMap<QString, QMap<QString, QMap<QString, Access>>> tree;
  QHash<QString, QString> names;  // digest -> name
  for (const FileRow& row : files_model_->rows()) names.insert(row.digest, row.name);
  for (auto it = usage.constBegin(); it != usage.constEnd(); ++it) {
    for (const QVariantMap& u : it.value()) {
      Access& a = tree[Get<QString>(u, "origin")][Get<QString>(u, "app")][it.key()];
      a.stored = a.stored || Get<bool>(u, "stored");
      a.reads += Get<uint>(u, "reads");
      a.last_used = qMax(a.last_used, Get<qlonglong>(u, "last-used"));
    }
  }
  for (const QVariantMap& g : grants) {
    tree[Get<QString>(g, "origin")][Get<QString>(g, "app")][Get<QString>(g, "digest")].granted = true;
  }

  // Keep the selection across the rebuild.
  QString sel_origin, sel_app, sel_digest;
  int sel_kind = -1;
  if (QTreeWidgetItem* item = selectedSiteItem()) {
    sel_kind = item->data(0, kKindRole).toInt();
    sel_origin = item->data(0, kOriginRole).toString();
    sel_app = item->data(0, kAppRole).toString();
    sel_digest = item->data(0, kDigestRole).toString();
  }

  sites_tree_->clear();
  // Sites by their displayed name; the apps acting for themselves last.
  QList<QString> origins = tree.keys();
  std::sort(origins.begin(), origins.end(), [](const QString& a, const QString& b) {
    if (a.isEmpty() != b.isEmpty()) return b.isEmpty();
    const QString sa = DescribeOrigin(a).site, sb = DescribeOrigin(b).site;
    return sa != sb ? sa < sb : a < b;
  });
  QFont bold = sites_tree_->font();
  bold.setBold(true);
  for (const QString& origin : origins) {
    auto* site_item = new QTreeWidgetItem(sites_tree_);
    site_item->setData(0, kKindRole, kSiteItem);
    site_item->setData(0, kOriginRole, origin);
    if (origin.isEmpty()) {
      site_item->setText(0, QStringLiteral("Apps on this computer"));
      site_item->setText(1, QStringLiteral("acting for themselves, not for a website"));
      site_item->setIcon(0, GenericAppIcon());
    } else {
      const SiteDisplay site = DescribeOrigin(origin);
      site_item->setText(0, Sanitize(site.site));
      site_item->setText(1, Sanitize(origin));
      site_item->setToolTip(0, Sanitize(origin));
      site_item->setIcon(0, QIcon(SiteBadge(site.site, 20, devicePixelRatioF())));
    }
    site_item->setFont(0, bold);
    qint64 site_last = 0;
    const auto& apps = tree.value(origin);
    for (auto app_it = apps.constBegin(); app_it != apps.constEnd(); ++app_it) {
      const AppDisplay app = DescribeApp(app_it.key());
      auto* app_item = new QTreeWidgetItem(site_item);
      app_item->setData(0, kKindRole, kAppItem);
      app_item->setData(0, kOriginRole, origin);
      app_item->setData(0, kAppRole, app_it.key());
      app_item->setText(0, app.kind.isEmpty() ? app.name : QStringLiteral("%1 (%2)").arg(app.name, app.kind));
      app_item->setToolTip(0, Sanitize(app_it.key()));
      app_item->setToolTip(1, Sanitize(app_it.key()));
      app_item->setIcon(0, app.icon);
      qint64 app_last = 0;
      for (auto f = app_it.value().constBegin(); f != app_it.value().constEnd(); ++f) {
        const Access& a = f.value();
        auto* file_item = new QTreeWidgetItem(app_item);
        file_item->setData(0, kKindRole, kFileItem);
        file_item->setData(0, kOriginRole, origin);
        file_item->setData(0, kAppRole, app_it.key());
        file_item->setData(0, kDigestRole, f.key());
        file_item->setData(0, kGrantedRole, a.granted);
        if (f.key() == QLatin1String("*")) {
          file_item->setText(0, QStringLiteral("All files"));
        } else {
          file_item->setText(0, names.contains(f.key()) ? DisplayName(names.value(f.key())) : ShortDigest(f.key()));
          file_item->setToolTip(0, Sanitize(names.value(f.key())) + QLatin1Char('\n') + Sanitize(f.key()));
        }
        QStringList access;
        if (a.stored) access << QStringLiteral("stored it");
        if (a.reads > 0) access << (a.reads == 1 ? QStringLiteral("read it once") : QStringLiteral("read it %1 times").arg(a.reads));
        if (a.granted) access << QStringLiteral("always allowed");
        QString text = access.join(QStringLiteral(" · "));
        if (!text.isEmpty()) text[0] = text[0].toUpper();
        file_item->setText(1, text);
        file_item->setText(2, a.last_used > 0 ? FormatWhen(a.last_used) : QString());
        app_last = qMax(app_last, a.last_used);
      }
      int stored = 0, read = 0, allowed = 0;
      for (const Access& a : app_it.value()) {
        stored += a.stored ? 1 : 0;
        read += a.reads > 0 ? 1 : 0;
        allowed += a.granted ? 1 : 0;
      }
      QStringList summary;
      if (stored > 0) summary << QStringLiteral("stored %1").arg(CountText(stored, "file", "files"));
      if (read > 0) summary << QStringLiteral("read %1").arg(CountText(read, "file", "files"));
      if (allowed > 0) summary << QStringLiteral("%1 always allowed").arg(allowed);
      QString summary_text = summary.join(QStringLiteral(" · "));
      if (!summary_text.isEmpty()) summary_text[0] = summary_text[0].toUpper();
      app_item->setText(1, summary_text);
      app_item->setText(2, app_last > 0 ? FormatWhen(app_last) : QString());
      site_last = qMax(site_last, app_last);
    }
    site_item->setText(2, site_last > 0 ? FormatWhen(site_last) : QString());
  }
  sites_tree_->expandAll();

  if (sel_kind >= 0) {
    selectSiteItem(sel_origin, sel_kind >= kAppItem ? sel_app : QString(),
                   sel_kind == kFileItem ? sel_digest : QString());
  }
}

void ManagerWindow::applySettings(const DBusResult<QVariantMap>& settings) {
  applying_settings_ = true;
  if (!settings.ok()) {
    settings_pane_->setEnabled(false);
    settings_note_->setText(IsUnknownMethod(settings.error)
                                ? QStringLiteral("This version of costored has no settings to change.")
                                : QStringLiteral("Could not read the settings: %1").arg(ErrorText(settings.error)));
  } else {
    settings_pane_->setEnabled(true);
    const QVariantMap& s = settings.value;
    const int policy = policy_->findData(Get<QString>(s, "consent-policy"));
    policy_->setCurrentIndex(policy >= 0 ? policy : 0);
    policy_->setEnabled(s.contains(QStringLiteral("consent-policy")));
    if (!timeout_->hasFocus()) timeout_->setValue(static_cast<int>(Get<uint>(s, "consent-timeout")));
    timeout_->setEnabled(s.contains(QStringLiteral("consent-timeout")));
    if (!prompts_->hasFocus()) prompts_->setValue(static_cast<int>(Get<uint>(s, "prompts-per-hour")));
    prompts_->setEnabled(s.contains(QStringLiteral("prompts-per-hour")));
    settings_note_->setText(
        QStringLiteral("Files a site stored itself, and files you always allowed, open without asking. "
                       "With “Deny without asking”, everything else is refused."));
  }
  applying_settings_ = false;
}

void ManagerWindow::setSetting(const QString& key, const QVariant& value) {
  const DBusStatus status = client_->setSetting(key, value);
  if (!status.ok()) {
    showMessage(QStringLiteral("Could not change the setting: %1").arg(ErrorText(status.error)), true);
    scheduleRefresh();  // show the daemon's value again
    return;
  }
  showMessage(QStringLiteral("Setting saved."), false);
}

QString ManagerWindow::selectedDigest() const {
  const QModelIndexList rows = files_view_->selectionModel()->selectedRows();
  if (rows.isEmpty()) return {};
  return rows.first().data(FilesModel::kDigestRole).toString();
}

bool ManagerWindow::selectFile(const QString& digest) {
  const int row = files_model_->rowOf(digest);
  if (row < 0) return false;
  const QModelIndex index = files_proxy_->mapFromSource(files_model_->index(row, 0));
  files_view_->selectionModel()->select(index, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
  files_view_->setCurrentIndex(index);
  return true;
}

QTreeWidgetItem* ManagerWindow::selectedSiteItem() const {
  const QList<QTreeWidgetItem*> items = sites_tree_->selectedItems();
  return items.isEmpty() ? nullptr : items.first();
}

bool ManagerWindow::selectSiteItem(const QString& origin, const QString& app, const QString& digest) {
  for (int i = 0; i < sites_tree_->topLevelItemCount(); ++i) {
    QTreeWidgetItem* site = sites_tree_->topLevelItem(i);
    if (site->data(0, kOriginRole).toString() != origin) continue;
    if (app.isEmpty()) {
      sites_tree_->setCurrentItem(site);
      return true;
    }
    for (int j = 0; j < site->childCount(); ++j) {
      QTreeWidgetItem* app_item = site->child(j);
      if (app_item->data(0, kAppRole).toString() != app) continue;
      if (digest.isEmpty()) {
        sites_tree_->setCurrentItem(app_item);
        return true;
      }
      for (int k = 0; k < app_item->childCount(); ++k) {
        if (app_item->child(k)->data(0, kDigestRole).toString() == digest) {
          sites_tree_->setCurrentItem(app_item->child(k));
          return true;
        }
      }
    }
  }
  return false;
}

void ManagerWindow::updateButtons() {
  delete_->setEnabled(reachable_ && !selectedDigest().isEmpty());
  QTreeWidgetItem* item = reachable_ ? selectedSiteItem() : nullptr;
  revoke_->setEnabled(item != nullptr && item->data(0, kKindRole).toInt() == kFileItem &&
                      item->data(0, kGrantedRole).toBool());
  forget_->setEnabled(item != nullptr && !item->data(0, kOriginRole).toString().isEmpty());
}

void ManagerWindow::deleteSelectedFile() {
  const QString digest = selectedDigest();
  const int row = files_model_->rowOf(digest);
  if (row < 0) return;
  const FileRow& file = files_model_->rows().at(row);
  const int users = file.usage_known ? file.sites + file.apps : static_cast<int>(file.used_by);
  const QString text =
      QStringLiteral("%1 (%2, %3) will be removed from this computer, with every permission given for it.\n\n"
                     "%4 that used it will have to download it again.")
          .arg(DisplayName(file.name), FormatSize(file.size), ShortDigest(file.digest),
               users == 1 ? QStringLiteral("The site or app") : QStringLiteral("The %1 sites and apps").arg(users));
  if (!confirm_(QStringLiteral("Delete %1?").arg(DisplayName(file.name)), text, QStringLiteral("Delete"))) return;
  const DBusStatus status = client_->deleteFile(digest);
  if (!status.ok()) {
    showMessage(QStringLiteral("Could not delete %1: %2").arg(DisplayName(file.name), ErrorText(status.error)), true);
    return;
  }
  showMessage(QStringLiteral("Deleted %1.").arg(DisplayName(file.name)), false);
}

void ManagerWindow::revokeSelectedGrant() {
  QTreeWidgetItem* item = selectedSiteItem();
  if (item == nullptr || item->data(0, kKindRole).toInt() != kFileItem || !item->data(0, kGrantedRole).toBool()) return;
  const QString origin = item->data(0, kOriginRole).toString();
  const QString app = item->data(0, kAppRole).toString();
  const QString digest = item->data(0, kDigestRole).toString();
  const DBusStatus status = client_->revoke(app, origin, digest);
  if (!status.ok()) {
    showMessage(QStringLiteral("Could not revoke the permission: %1").arg(ErrorText(status.error)), true);
    return;
  }
  showMessage(QStringLiteral("%1 may no longer read %2 without asking.")
                  .arg(DescribePrincipal(app, origin), item->text(0)),
              false);
}

void ManagerWindow::forgetSelectedSite() {
  QTreeWidgetItem* item = selectedSiteItem();
  if (item == nullptr) return;
  const QString origin = item->data(0, kOriginRole).toString();
  if (origin.isEmpty()) return;
  const QString site = Sanitize(DescribeOrigin(origin).site);
  // Which files go with it: those that nobody else stored.
  int files = 0;
  quint64 bytes = 0;
  for (const FileRow& file : files_model_->rows()) {
    if (file.storer_origins.isEmpty()) continue;
    if (std::all_of(file.storer_origins.cbegin(), file.storer_origins.cend(),
                    [&origin](const QString& o) { return o == origin; })) {
      ++files;
      bytes += file.size;
    }
  }
  QString text = QStringLiteral("costore will forget %1: every permission you gave it, and its records of storing "
                                "and using files.")
                     .arg(Sanitize(origin));
  if (files > 0) {
    text += QStringLiteral("\n\n%1 that only this site stored (%2) will be deleted.")
                .arg(files == 1 ? QStringLiteral("1 file") : QStringLiteral("%1 files").arg(files), FormatSize(bytes));
  }
  if (!confirm_(QStringLiteral("Forget %1?").arg(site), text, QStringLiteral("Forget"))) return;
  const auto result = client_->forgetOrigin(origin);
  if (!result.ok()) {
    showMessage(IsUnknownMethod(result.error)
                    ? QStringLiteral("This version of costored cannot forget a site yet.")
                    : QStringLiteral("Could not forget %1: %2").arg(site, ErrorText(result.error)),
                true);
    return;
  }
  const uint grants = Get<uint>(result.value, "grants-removed");
  const uint deleted = Get<uint>(result.value, "files-deleted");
  showMessage(QStringLiteral("Forgot %1: %2 removed, %3 deleted.")
                  .arg(site, CountText(static_cast<int>(grants), "permission", "permissions"),
                       CountText(static_cast<int>(deleted), "file", "files")),
              false);
}

}  // namespace costore::ui
