// The manager window against the real costored (tests/support/with-costored):
// what it shows of stored files and grants, what its buttons ask the daemon,
// and that it follows Manager1.Changed.
#include <QApplication>
#include <QComboBox>
#include <QFrame>
#include <QLabel>
#include <QPushButton>
#include <QTabWidget>
#include <QTableView>
#include <QTreeWidget>

#include "consent-ui/manager_client.h"
#include "consent-ui/manager_window.h"
#include "test_support.h"

using namespace costore::ui;

namespace {

constexpr char kSileroDigest[] = "sha256:1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3";
constexpr quint64 kSileroSize = 2327524;
constexpr char kSileroName[] = "onnx-community/silero-vad/onnx/model.onnx";
constexpr char kHuggingFace[] = "https://huggingface.co";
constexpr char kXenova[] = "https://xenova.github.io";

QString Cell(ManagerWindow& w, int row, int column) {
  // In the source model's order (the view sorts by name).
  return w.filesModel()->index(row, column).data(Qt::DisplayRole).toString();
}

QTreeWidgetItem* FindItem(ManagerWindow& w, const QString& origin, const QString& app, const QString& digest) {
  QTreeWidget* tree = w.sitesTree();
  for (int i = 0; i < tree->topLevelItemCount(); ++i) {
    QTreeWidgetItem* site = tree->topLevelItem(i);
    if (site->data(0, ManagerWindow::kOriginRole).toString() != origin) continue;
    if (app.isEmpty()) return site;
    for (int j = 0; j < site->childCount(); ++j) {
      QTreeWidgetItem* a = site->child(j);
      if (a->data(0, ManagerWindow::kAppRole).toString() != app) continue;
      if (digest.isEmpty()) return a;
      for (int k = 0; k < a->childCount(); ++k) {
        if (a->child(k)->data(0, ManagerWindow::kDigestRole).toString() == digest) return a->child(k);
      }
    }
  }
  return nullptr;
}

}  // namespace

class ManagerTest : public QObject {
  Q_OBJECT

 private:
  QString silero_;  // the real model file
  QString silero16k_;
  QString tokenizer_;
  QString tokenizer_digest_;

  // The daemon records the app by its executable: the fake browsers' paths.
  static QString Chromium() { return QFileInfo(test::FakeChromium()).canonicalFilePath(); }
  static QString Firefox() { return QFileInfo(test::FakeFirefox()).canonicalFilePath(); }

  static void Store(const QString& browser, const QString& origin, const QString& file, const QString& digest,
                    const QString& name) {
    QString output;
    const int rc = test::RunFakeApp(browser, {QStringLiteral("store"), origin, file, digest, name}, &output);
    QVERIFY2(rc == 0, qPrintable(QStringLiteral("store by %1 failed (%2): %3").arg(browser).arg(rc).arg(output)));
  }

  static void Open(const QString& browser, const QString& origin, const QString& digest, int expect_rc = 0) {
    QString output;
    const int rc = test::RunFakeApp(browser, {QStringLiteral("open"), origin, digest}, &output);
    QVERIFY2(rc == expect_rc, qPrintable(QStringLiteral("open by %1 exited %2: %3").arg(browser).arg(rc).arg(output)));
  }

  static void Grant(const QString& app, const QString& origin, const QString& digest) {
    const QDBusMessage reply = test::CallManager(QStringLiteral("Grant"), {app, origin, digest});
    QVERIFY2(reply.type() == QDBusMessage::ReplyMessage, qPrintable(reply.errorMessage()));
  }

  std::unique_ptr<ManagerWindow> Window(ManagerClient* client) {
    auto window = std::make_unique<ManagerWindow>(client);
    window->setConfirm([](const QString&, const QString&, const QString&) { return true; });
    window->show();
    return window;
  }

 private Q_SLOTS:
  void initTestCase() {
    test::UseTestDesktop();
    QVERIFY2(QDBusConnection::sessionBus().isConnected(), "no session bus: run under tests/support/with-costored");
    silero_ = test::SharedModelsDir() + QStringLiteral("/silero_vad.onnx");
    QVERIFY2(QFileInfo::exists(silero_),
             qPrintable(QStringLiteral("the real model file is missing: %1 (from the shared test data)").arg(silero_)));
    QCOMPARE(QFileInfo(silero_).size(), qint64(kSileroSize));
    QCOMPARE(test::Sha256Digest(silero_), QLatin1String(kSileroDigest));
    silero16k_ = test::SharedModelsDir() + QStringLiteral("/silero_vad_16k_op15.onnx");

    // A tokenizer-like JSON file of our own, for a third, different file.
    const QString scratch = qEnvironmentVariable("COSTORE_TEST_DIR", QDir::tempPath());
    tokenizer_ = scratch + QStringLiteral("/tokenizer.json");
    QFile f(tokenizer_);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write("{\"version\":\"1.0\",\"model\":{\"type\":\"BPE\",\"vocab\":{");
    for (int i = 0; i < 40000; ++i) f.write(QStringLiteral("\"tok%1\":%1,").arg(i).toUtf8());
    f.write("\"<|endoftext|>\":50256}}}\n");
    f.close();
    tokenizer_digest_ = test::Sha256Digest(tokenizer_);
    QVERIFY(!tokenizer_digest_.isEmpty());
  }

  void init() { test::ClearStore(); }

  void showsStoredFilesAndFollowsChanged() {
    ManagerClient client(QDBusConnection::sessionBus());
    auto window = Window(&client);
    QVERIFY(window->daemonReachable());
    QVERIFY(!window->errorBanner()->isVisible());
    QCOMPARE(window->filesModel()->rowCount(), 0);
    QCOMPARE(window->totalLabel()->text(), QStringLiteral("Nothing stored"));

    Store(Chromium(), QLatin1String(kHuggingFace), silero_, QLatin1String(kSileroDigest), QLatin1String(kSileroName));
    // No refresh() here: Manager1.Changed brings the row.
    QTRY_COMPARE(window->filesModel()->rowCount(), 1);
    QCOMPARE(Cell(*window, 0, FilesModel::kName), QStringLiteral("model.onnx"));
    QCOMPARE(window->filesModel()->index(0, FilesModel::kName).data(Qt::ToolTipRole).toString(),
             QLatin1String(kSileroName));
    QCOMPARE(Cell(*window, 0, FilesModel::kSize), QStringLiteral("2.3 MB"));
    QCOMPARE(Cell(*window, 0, FilesModel::kVisibility), QStringLiteral("Public"));
    QCOMPARE(Cell(*window, 0, FilesModel::kStoredBy), QStringLiteral("huggingface.co (chromium)"));
    QCOMPARE(Cell(*window, 0, FilesModel::kUsedBy), QStringLiteral("1 site"));
    QVERIFY(Cell(*window, 0, FilesModel::kLastUsed) != QStringLiteral("never"));
    QCOMPARE(Cell(*window, 0, FilesModel::kDigest), QStringLiteral("sha256:1a153a22f450…8788e3"));
    QCOMPARE(window->filesModel()->index(0, 0).data(FilesModel::kDigestRole).toString(), QLatin1String(kSileroDigest));
    QCOMPARE(window->totalLabel()->text(), QStringLiteral("1 file · 2.3 MB on disk"));

    // Another site storing the same bytes: one file, two storers.
    Store(Firefox(), QLatin1String(kXenova), silero_, QLatin1String(kSileroDigest), QStringLiteral("silero_vad.onnx"));
    QTRY_COMPARE(Cell(*window, 0, FilesModel::kUsedBy), QStringLiteral("2 sites"));
    QCOMPARE(window->filesModel()->rowCount(), 1);
    QCOMPARE(Cell(*window, 0, FilesModel::kStoredBy),
             QStringLiteral("huggingface.co (chromium), xenova.github.io (firefox)"));
    QCOMPARE(Cell(*window, 0, FilesModel::kName), QStringLiteral("model.onnx"));  // the first name stays

    // The sites tab groups by site, then app.
    QTreeWidgetItem* hf = FindItem(*window, QLatin1String(kHuggingFace), {}, {});
    QVERIFY(hf != nullptr);
    QCOMPARE(hf->text(0), QStringLiteral("huggingface.co"));
    QCOMPARE(hf->text(1), QLatin1String(kHuggingFace));
    QTreeWidgetItem* stored = FindItem(*window, QLatin1String(kHuggingFace), Chromium(), QLatin1String(kSileroDigest));
    QVERIFY(stored != nullptr);
    QCOMPARE(stored->text(0), QStringLiteral("model.onnx"));
    QCOMPARE(stored->text(1), QStringLiteral("Stored it"));
    QCOMPARE(FindItem(*window, QLatin1String(kHuggingFace), Chromium(), {})->text(0), QStringLiteral("chromium"));
  }

  void grantsShowAndRevokeCallsTheDaemon() {
    Store(Chromium(), QLatin1String(kHuggingFace), silero_, QLatin1String(kSileroDigest), QLatin1String(kSileroName));
    ManagerClient client(QDBusConnection::sessionBus());
    auto window = Window(&client);
    window->tabs()->setCurrentIndex(1);

    // Without a grant, another site reads nothing (and no agent is asked
    // here: the daemon has none registered).
    Grant(Firefox(), QLatin1String(kXenova), QLatin1String(kSileroDigest));
    QTRY_VERIFY(FindItem(*window, QLatin1String(kXenova), Firefox(), QLatin1String(kSileroDigest)) != nullptr);
    QTreeWidgetItem* item = FindItem(*window, QLatin1String(kXenova), Firefox(), QLatin1String(kSileroDigest));
    QVERIFY(item->data(0, ManagerWindow::kGrantedRole).toBool());
    QCOMPARE(item->text(1), QStringLiteral("Always allowed"));

    Open(Firefox(), QLatin1String(kXenova), QLatin1String(kSileroDigest));
    window->refresh();  // opening emits no Changed
    item = FindItem(*window, QLatin1String(kXenova), Firefox(), QLatin1String(kSileroDigest));
    QCOMPARE(item->text(1), QStringLiteral("Read it once · always allowed"));
    QCOMPARE(Cell(*window, 0, FilesModel::kUsedBy), QStringLiteral("2 sites"));

    // Revoke is for grants only.
    QVERIFY(window->selectSiteItem(QLatin1String(kHuggingFace), Chromium(), QLatin1String(kSileroDigest)));
    QVERIFY(!window->revokeButton()->isEnabled());
    QVERIFY(window->selectSiteItem(QLatin1String(kXenova)));
    QVERIFY(!window->revokeButton()->isEnabled());
    QVERIFY(window->forgetButton()->isEnabled());

    QVERIFY(window->selectSiteItem(QLatin1String(kXenova), Firefox(), QLatin1String(kSileroDigest)));
    QVERIFY(window->revokeButton()->isEnabled());
    QTest::mouseClick(window->revokeButton(), Qt::LeftButton);
    QVERIFY(test::MapList(test::CallManager(QStringLiteral("ListGrants"), {QVariantMap()})).isEmpty());
    QTRY_COMPARE(FindItem(*window, QLatin1String(kXenova), Firefox(), QLatin1String(kSileroDigest))->text(1),
                 QStringLiteral("Read it once"));
    QVERIFY(!FindItem(*window, QLatin1String(kXenova), Firefox(), QLatin1String(kSileroDigest))
                 ->data(0, ManagerWindow::kGrantedRole)
                 .toBool());
    Open(Firefox(), QLatin1String(kXenova), QLatin1String(kSileroDigest), 2);  // NotFound again
  }

  void wildcardGrant() {
    Store(Chromium(), QLatin1String(kHuggingFace), silero_, QLatin1String(kSileroDigest), QLatin1String(kSileroName));
    ManagerClient client(QDBusConnection::sessionBus());
    auto window = Window(&client);
    Grant(Firefox(), QString(), QStringLiteral("*"));
    QTRY_VERIFY(FindItem(*window, QString(), Firefox(), QStringLiteral("*")) != nullptr);
    QTreeWidgetItem* all = FindItem(*window, QString(), Firefox(), QStringLiteral("*"));
    QCOMPARE(all->text(0), QStringLiteral("All files"));
    QCOMPARE(all->parent()->parent()->text(0), QStringLiteral("Apps on this computer"));
    QVERIFY(window->selectSiteItem(QString()));
    QVERIFY(!window->forgetButton()->isEnabled());  // not a site
    QVERIFY(window->selectSiteItem(QString(), Firefox(), QStringLiteral("*")));
    window->revokeButton()->click();
    QTRY_VERIFY(FindItem(*window, QString(), Firefox(), QStringLiteral("*")) == nullptr);
  }

  void deleteAsksThenCallsTheDaemon() {
    Store(Chromium(), QLatin1String(kHuggingFace), silero_, QLatin1String(kSileroDigest), QLatin1String(kSileroName));
    ManagerClient client(QDBusConnection::sessionBus());
    auto window = Window(&client);
    QCOMPARE(window->filesModel()->rowCount(), 1);
    QVERIFY(!window->deleteButton()->isEnabled());

    // Said no: nothing happens.
    QStringList asked;
    window->setConfirm([&asked](const QString& title, const QString& text, const QString& action) {
      asked << title << text << action;
      return false;
    });
    QVERIFY(window->selectFile(QLatin1String(kSileroDigest)));
    QVERIFY(window->deleteButton()->isEnabled());
    QTest::mouseClick(window->deleteButton(), Qt::LeftButton);
    QCOMPARE(asked.value(0), QStringLiteral("Delete model.onnx?"));
    QVERIFY2(asked.value(1).contains(QStringLiteral("2.3 MB")), qPrintable(asked.value(1)));
    QCOMPARE(asked.value(2), QStringLiteral("Delete"));
    QCOMPARE(test::MapList(test::CallManager(QStringLiteral("List"), {QVariantMap()})).size(), 1);

    // Said yes: the daemon deletes, and Changed empties the table.
    window->setConfirm([](const QString&, const QString&, const QString&) { return true; });
    QTest::mouseClick(window->deleteButton(), Qt::LeftButton);
    QCOMPARE(test::MapList(test::CallManager(QStringLiteral("List"), {QVariantMap()})).size(), 0);
    QTRY_COMPARE(window->filesModel()->rowCount(), 0);
    QCOMPARE(window->totalLabel()->text(), QStringLiteral("Nothing stored"));
    QTRY_COMPARE(window->sitesTree()->topLevelItemCount(), 0);
    QVERIFY(window->messageLabel()->text().startsWith(QStringLiteral("Deleted model.onnx")));
  }

  void deleteErrorIsShown() {
    Store(Chromium(), QLatin1String(kHuggingFace), silero_, QLatin1String(kSileroDigest), QLatin1String(kSileroName));
    ManagerClient client(QDBusConnection::sessionBus());
    auto window = Window(&client);
    QVERIFY(window->selectFile(QLatin1String(kSileroDigest)));
    // Someone else deletes it first; the window has not caught up yet.
    window->setConfirm([](const QString&, const QString&, const QString&) {
      test::CallManager(QStringLiteral("Delete"), {QLatin1String(kSileroDigest)});
      return true;
    });
    window->deleteButton()->click();
    QVERIFY2(window->messageLabel()->text().startsWith(QStringLiteral("Could not delete model.onnx")),
             qPrintable(window->messageLabel()->text()));
    QTRY_COMPARE(window->filesModel()->rowCount(), 0);
  }

  void unreachableDaemonIsShown() {
    ManagerClient absent(QDBusConnection::sessionBus(), QStringLiteral("io.github.costore.NotRunning"));
    auto window = Window(&absent);
    QVERIFY(!window->daemonReachable());
    QVERIFY(window->errorBanner()->isVisible());
    QCOMPARE(window->errorTitle()->text(), QStringLiteral("Cannot reach costored, the service that keeps your model files"));
    QVERIFY2(window->errorText()->text().contains(QStringLiteral("io.github.costore.NotRunning")),
             qPrintable(window->errorText()->text()));
    QVERIFY(!window->tabs()->isEnabled());
    QCOMPARE(window->filesModel()->rowCount(), 0);
    test::SaveScreenshot(window.get(), QStringLiteral("manager-unreachable"));

    const QDBusConnection nowhere =
        QDBusConnection::connectToBus(QStringLiteral("unix:path=/nonexistent/costore-test-bus"), QStringLiteral("nowhere"));
    QVERIFY(!nowhere.isConnected());
    ManagerClient disconnected(nowhere);
    auto window2 = Window(&disconnected);
    QVERIFY(window2->errorBanner()->isVisible());
    QVERIFY(!window2->daemonReachable());
    QDBusConnection::disconnectFromBus(QStringLiteral("nowhere"));
  }

  void settingsWithAnOlderDaemon() {
    if (test::DaemonHas(QStringLiteral("GetSettings"))) QSKIP("costored has GetSettings: see consent_ui_daemon_next_test");
    ManagerClient client(QDBusConnection::sessionBus());
    auto window = Window(&client);
    QVERIFY(!window->settingsPane()->isEnabled());
    QCOMPARE(window->settingsNote()->text(), QStringLiteral("This version of costored has no settings to change."));
  }

  void screenshots() {
    Store(Chromium(), QLatin1String(kHuggingFace), silero_, QLatin1String(kSileroDigest), QLatin1String(kSileroName));
    if (QFileInfo::exists(silero16k_)) {
      Store(Firefox(), QLatin1String(kHuggingFace), silero16k_, test::Sha256Digest(silero16k_),
            QStringLiteral("snakers4/silero-vad/silero_vad_16k_op15.onnx"));
    }
    Store(Firefox(), QLatin1String(kXenova), tokenizer_, tokenizer_digest_, QStringLiteral("Xenova/whisper-tiny.en/tokenizer.json"));
    Grant(Firefox(), QLatin1String(kXenova), QLatin1String(kSileroDigest));
    Open(Firefox(), QLatin1String(kXenova), QLatin1String(kSileroDigest));
    Open(Firefox(), QLatin1String(kXenova), QLatin1String(kSileroDigest));

    ManagerClient client(QDBusConnection::sessionBus());
    auto window = Window(&client);
    window->resize(1060, 560);
    QTRY_COMPARE(window->filesModel()->rowCount(), QFileInfo::exists(silero16k_) ? 3 : 2);
    QVERIFY(!test::SaveScreenshot(window.get(), QStringLiteral("manager")).isEmpty());
    window->tabs()->setCurrentIndex(1);
    QVERIFY(window->selectSiteItem(QLatin1String(kXenova), Firefox(), QLatin1String(kSileroDigest)));
    QVERIFY(!test::SaveScreenshot(window.get(), QStringLiteral("manager-sites")).isEmpty());
    window->tabs()->setCurrentIndex(2);
    QVERIFY(!test::SaveScreenshot(window.get(), QStringLiteral("manager-settings")).isEmpty());
  }
};

QTEST_MAIN(ManagerTest)
#include "manager_test.moc"
