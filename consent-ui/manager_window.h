// The manager window: every stored file, who stored and used it, who may
// read what, and the consent settings. It keeps nothing of its own: each
// view is re-read from the daemon (Manager1) when the daemon says something
// changed.
#pragma once

#include <QAbstractTableModel>
#include <QList>
#include <QMainWindow>
#include <QString>
#include <QStringList>
#include <functional>

#include "consent-ui/manager_client.h"

class QComboBox;
class QFrame;
class QLabel;
class QPushButton;
class QSpinBox;
class QSortFilterProxyModel;
class QTabWidget;
class QTableView;
class QTimer;
class QTreeWidget;
class QTreeWidgetItem;

namespace costore::ui {

struct FileRow {
  QString digest;
  QString name;
  quint64 size = 0;
  bool is_private = false;
  qint64 first_stored_us = 0;
  qint64 last_used_us = 0;
  QStringList stored_by;  // "huggingface.co (chromium)"
  QStringList storer_origins;  // the origin of each principal that stored it
  int sites = 0;          // principals with an origin that stored or read it
  int apps = 0;           // principals without one
  bool usage_known = false;
  quint32 used_by = 0;    // Manager1.List "used-by", when Usage failed
};

class FilesModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column { kName, kSize, kVisibility, kStoredBy, kUsedBy, kLastUsed, kDigest, kColumnCount };
  static constexpr int kDigestRole = Qt::UserRole;
  static constexpr int kSortRole = Qt::UserRole + 1;

  using QAbstractTableModel::QAbstractTableModel;

  void setRows(QList<FileRow> rows);
  const QList<FileRow>& rows() const { return rows_; }
  int rowOf(const QString& digest) const;

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

 private:
  QList<FileRow> rows_;
};

class ManagerWindow : public QMainWindow {
  Q_OBJECT

 public:
  // Roles of the items of sitesTree().
  enum SiteItemKind { kSiteItem, kAppItem, kFileItem };
  static constexpr int kKindRole = Qt::UserRole;
  static constexpr int kOriginRole = Qt::UserRole + 1;
  static constexpr int kAppRole = Qt::UserRole + 2;
  static constexpr int kDigestRole = Qt::UserRole + 3;
  static constexpr int kGrantedRole = Qt::UserRole + 4;

  // Asks the user to confirm a destructive action; true to go ahead.
  using Confirm = std::function<bool(const QString& title, const QString& text, const QString& action)>;

  explicit ManagerWindow(ManagerClient* client, QWidget* parent = nullptr);
  ~ManagerWindow() override;

  void setConfirm(Confirm confirm) { confirm_ = std::move(confirm); }

  // For tests and screenshots.
  QTabWidget* tabs() const { return tabs_; }
  QTableView* filesView() const { return files_view_; }
  FilesModel* filesModel() const { return files_model_; }
  QTreeWidget* sitesTree() const { return sites_tree_; }
  QFrame* errorBanner() const { return banner_; }
  QLabel* errorTitle() const { return banner_title_; }
  QLabel* errorText() const { return banner_text_; }
  QLabel* totalLabel() const { return total_; }
  QLabel* messageLabel() const { return message_; }
  QPushButton* deleteButton() const { return delete_; }
  QPushButton* revokeButton() const { return revoke_; }
  QPushButton* forgetButton() const { return forget_; }
  QComboBox* policyCombo() const { return policy_; }
  QSpinBox* timeoutSpin() const { return timeout_; }
  QSpinBox* promptsSpin() const { return prompts_; }
  QWidget* settingsPane() const { return settings_pane_; }
  QLabel* settingsNote() const { return settings_note_; }
  bool daemonReachable() const { return reachable_; }
  int refreshCount() const { return refresh_count_; }

  // Selects the row of a digest in the files table / the item of
  // (origin, app, digest) in the sites tree; false if absent.
  bool selectFile(const QString& digest);
  bool selectSiteItem(const QString& origin, const QString& app = {}, const QString& digest = {});

 public Q_SLOTS:
  // Re-reads everything from the daemon now.
  void refresh();
  void deleteSelectedFile();
  void revokeSelectedGrant();
  void forgetSelectedSite();

 Q_SIGNALS:
  void refreshed();

 private:
  void buildUi();
  QWidget* buildFilesTab();
  QWidget* buildSitesTab();
  QWidget* buildSettingsTab();
  void scheduleRefresh();
  void showUnreachable(const QDBusError& error);
  void showMessage(const QString& text, bool error);
  void rebuildSites(const QList<QVariantMap>& grants, const QHash<QString, QList<QVariantMap>>& usage);
  void applySettings(const DBusResult<QVariantMap>& settings);
  void setSetting(const QString& key, const QVariant& value);
  void updateButtons();
  QTreeWidgetItem* selectedSiteItem() const;
  QString selectedDigest() const;

  ManagerClient* client_;
  Confirm confirm_;
  FilesModel* files_model_ = nullptr;
  QSortFilterProxyModel* files_proxy_ = nullptr;
  QTabWidget* tabs_ = nullptr;
  QTableView* files_view_ = nullptr;
  QTreeWidget* sites_tree_ = nullptr;
  QFrame* banner_ = nullptr;
  QLabel* banner_title_ = nullptr;
  QLabel* banner_text_ = nullptr;
  QLabel* total_ = nullptr;
  QLabel* message_ = nullptr;
  QPushButton* delete_ = nullptr;
  QPushButton* revoke_ = nullptr;
  QPushButton* forget_ = nullptr;
  QWidget* settings_pane_ = nullptr;
  QLabel* settings_note_ = nullptr;
  QComboBox* policy_ = nullptr;
  QSpinBox* timeout_ = nullptr;
  QSpinBox* prompts_ = nullptr;
  QTimer* refresh_timer_ = nullptr;
  QTimer* message_timer_ = nullptr;
  bool reachable_ = false;
  bool applying_settings_ = false;
  int refresh_count_ = 0;
};

}  // namespace costore::ui
