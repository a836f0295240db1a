// The consent dialog and the queue in front of it, without a bus.
#include <QApplication>
#include <QLabel>
#include <QPushButton>
#include <QSignalSpy>
#include <QTest>

#include "consent-ui/consent_dialog.h"
#include "consent-ui/consent_queue.h"
#include "consent-ui/display.h"
#include "test_support.h"

using namespace costore::ui;

namespace {

constexpr char kSileroDigest[] = "sha256:1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3";

qint64 AgoUs(qint64 seconds) { return (QDateTime::currentMSecsSinceEpoch() - seconds * 1000) * 1000; }

ConsentRequest MakeRequest(const QString& id, const QString& origin,
                           const QString& app = QStringLiteral("/usr/lib/chromium/chromium")) {
  ConsentRequest r;
  r.id = id;
  r.app = app;
  r.origin = origin;
  r.files << RequestedFile{QLatin1String(kSileroDigest), QStringLiteral("onnx-community/silero-vad/onnx/model.onnx"),
                           2327524};
  r.attribution << Attribution{QStringLiteral("/usr/lib/chromium/chromium"), QStringLiteral("https://huggingface.co"),
                               true, 3, 1, AgoUs(3 * 86400)}
                << Attribution{QStringLiteral("/usr/lib/firefox/firefox"), QStringLiteral("https://xenova.github.io"),
                               false, 2, 0, AgoUs(5 * 3600)};
  return r;
}

QString Text(QWidget* root, const char* name) {
  auto* label = root->findChild<QLabel*>(QLatin1String(name));
  if (label == nullptr) return QStringLiteral("<no label %1>").arg(QLatin1String(name));
  return label->text().remove(QChar(0x200B));  // Breakable()'s wrap points
}

QList<ConsentDialog*> VisibleDialogs() {
  QList<ConsentDialog*> out;
  for (QWidget* w : QApplication::topLevelWidgets()) {
    if (auto* d = qobject_cast<ConsentDialog*>(w); d != nullptr && d->isVisible()) out << d;
  }
  return out;
}

}  // namespace

class DialogTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() {
    test::UseTestDesktop();
    ConsentDialog::setArmDelayMs(50);
  }

  void cleanup() {
    for (QWidget* w : QApplication::topLevelWidgets()) {
      if (qobject_cast<ConsentDialog*>(w) != nullptr) delete w;
    }
  }

  void showsRegistrableDomainOfLookAlike() {
    ConsentDialog dialog(MakeRequest(QStringLiteral("1"), QStringLiteral("https://login.huggingface.co.evil.example")));
    dialog.show();
    QCOMPARE(Text(&dialog, "site"), QStringLiteral("evil.example"));
    QCOMPARE(Text(&dialog, "origin"), QStringLiteral("https://login.huggingface.co.evil.example"));
    QCOMPARE(Text(&dialog, "headline"), QStringLiteral("evil.example wants to use a model file stored by other sites."));
    // The site is larger than anything else in the dialog.
    auto* site = dialog.findChild<QLabel*>(QStringLiteral("site"));
    auto* origin = dialog.findChild<QLabel*>(QStringLiteral("origin"));
    QVERIFY(site->font().pointSizeF() > origin->font().pointSizeF() * 1.5);
    QVERIFY(site->font().bold());
    QCOMPARE(dialog.windowTitle(), QStringLiteral("Allow evil.example to use a model file?"));
  }

  void showsAppFilesAndAttribution() {
    ConsentDialog dialog(MakeRequest(QStringLiteral("1"), QStringLiteral("https://xenova.github.io")));
    dialog.show();
    QCOMPARE(Text(&dialog, "site"), QStringLiteral("xenova.github.io"));
    QCOMPARE(Text(&dialog, "app"), QStringLiteral("chromium"));
    QCOMPARE(Text(&dialog, "appPath"), QStringLiteral("/usr/lib/chromium/chromium"));
    QCOMPARE(Text(&dialog, "fileName"), QStringLiteral("model.onnx"));
    QCOMPARE(Text(&dialog, "fileHint"), QStringLiteral("onnx-community/silero-vad/onnx/model.onnx"));
    QCOMPARE(Text(&dialog, "fileSize"), QStringLiteral("2.3 MB"));
    QCOMPARE(Text(&dialog, "fileDigest"), QStringLiteral("sha256:1a153a22f450…8788e3"));
    QCOMPARE(Text(&dialog, "storedBy"), QStringLiteral("huggingface.co (chromium)"));
    QCOMPARE(Text(&dialog, "usedBy"), QStringLiteral("2 sites · last used 5 hours ago"));
    QVERIFY(Text(&dialog, "privacyNote").contains(QStringLiteral("learn that it is already on this computer")));
    QVERIFY(dialog.findChild<QLabel*>(QStringLiteral("insecure")) == nullptr);
  }

  // Policy "ask-later": the site was told the file is absent; the question
  // is only whether to allow it from now on.
  void deferredRequestAsksForNextTime() {
    ConsentRequest r = MakeRequest(QStringLiteral("1"), QStringLiteral("https://xenova.github.io"));
    r.deferred = true;
    ConsentDialog dialog(r);
    dialog.show();
    QCOMPARE(dialog.windowTitle(), QStringLiteral("Allow xenova.github.io to use a model file from now on?"));
    QVERIFY(!dialog.allowOnceButton()->isVisible());
    QVERIFY(dialog.allowAlwaysButton()->isVisible());
    QVERIFY2(Text(&dialog, "privacyNote").startsWith(QStringLiteral("xenova.github.io was told that this file is not on "
                                                                     "this computer.")),
             qPrintable(Text(&dialog, "privacyNote")));
    ConsentDialog asked(MakeRequest(QStringLiteral("2"), QStringLiteral("https://xenova.github.io")));
    asked.show();
    QVERIFY(asked.allowOnceButton()->isVisible());
  }

  void untrustedTextIsPlain() {
    ConsentRequest r = MakeRequest(QStringLiteral("1"), QStringLiteral("https://xenova.github.io"));
    r.files[0].name = QString::fromUtf8("<img src=x><b>weights\u202Exnno.onnx");
    ConsentDialog dialog(r);
    for (QLabel* label : dialog.findChildren<QLabel*>()) {
      if (!label->text().isEmpty()) QCOMPARE(label->textFormat(), Qt::PlainText);
    }
    QCOMPARE(Text(&dialog, "fileName"), QString::fromUtf8("<img src=x><b>weights\uFFFDxnno.onnx"));
  }

  void insecureOriginIsFlagged() {
    ConsentDialog dialog(MakeRequest(QStringLiteral("1"), QStringLiteral("http://models.example.com")));
    QVERIFY(dialog.findChild<QLabel*>(QStringLiteral("insecure")) != nullptr);
    QCOMPARE(Text(&dialog, "site"), QStringLiteral("example.com"));
  }

  void appWithoutOrigin() {
    ConsentRequest r = MakeRequest(QStringLiteral("1"), QString(), QStringLiteral("/usr/local/bin/llama-server"));
    ConsentDialog dialog(r);
    QCOMPARE(Text(&dialog, "site"), QStringLiteral("llama-server"));
    QCOMPARE(Text(&dialog, "origin"), QStringLiteral("/usr/local/bin/llama-server"));
    QCOMPARE(Text(&dialog, "headline"), QStringLiteral("llama-server wants to use a model file stored by other sites."));
    QCOMPARE(dialog.allowAlwaysButton()->text(), QStringLiteral("Always allow for this app"));
  }

  void severalFiles() {
    ConsentRequest r = MakeRequest(QStringLiteral("1"), QStringLiteral("https://xenova.github.io"));
    r.files << RequestedFile{QStringLiteral("sha256:") + QString(64, QLatin1Char('b')), QString(), 1289603};
    r.attribution << Attribution{QStringLiteral("/usr/bin/ollama"), QString(), true, 0, 1, AgoUs(60)};
    ConsentDialog dialog(r);
    QCOMPARE(Text(&dialog, "headline"),
             QStringLiteral("xenova.github.io wants to use 2 model files stored by other sites and apps."));
    QCOMPARE(dialog.findChildren<QWidget*>(QStringLiteral("file")).size(), 2);
    QVERIFY(dialog.findChildren<QLabel*>(QStringLiteral("fileName")).at(1)->text() == QStringLiteral("Unnamed file"));
    QCOMPARE(Text(&dialog, "storedBy"), QStringLiteral("huggingface.co (chromium), ollama"));
    QVERIFY2(Text(&dialog, "usedBy").startsWith(QStringLiteral("2 sites and 1 app · last used ")),
             qPrintable(Text(&dialog, "usedBy")));  }

  void siteCountsOnceWhateverTheBrowser() {
    ConsentRequest r = MakeRequest(QStringLiteral("1"), QStringLiteral("https://xenova.github.io"));
    r.attribution << Attribution{QStringLiteral("flatpak:org.mozilla.firefox"), QStringLiteral("https://huggingface.co"),
                                 true, 0, 1, 0};
    ConsentDialog dialog(r);
    QCOMPARE(Text(&dialog, "storedBy"),
             QStringLiteral("huggingface.co (chromium), huggingface.co (org.mozilla.firefox)"));
    QVERIFY2(Text(&dialog, "usedBy").startsWith(QStringLiteral("2 sites · ")), qPrintable(Text(&dialog, "usedBy")));

    r.attribution.clear();
    ConsentDialog unknown(r);
    QCOMPARE(Text(&unknown, "storedBy"), QStringLiteral("no record of who stored it"));
    QCOMPARE(Text(&unknown, "usedBy"), QString());
  }

  void buttons() {
    ConsentDialog dialog(MakeRequest(QStringLiteral("1"), QStringLiteral("https://xenova.github.io")));
    QCOMPARE(dialog.allowOnceButton()->text(), QStringLiteral("Allow once"));
    QCOMPARE(dialog.allowAlwaysButton()->text(), QStringLiteral("Always allow for this site"));
    QCOMPARE(dialog.denyButton()->text(), QStringLiteral("Deny"));
    for (QPushButton* allow : {dialog.allowOnceButton(), dialog.allowAlwaysButton()}) {
      QVERIFY(!allow->autoDefault());
      QVERIFY(!allow->isDefault());
    }
    QVERIFY(dialog.denyButton()->isDefault());
    // The allow buttons wait a moment before they take clicks.
    QVERIFY(!dialog.allowOnceButton()->isEnabled());
    QVERIFY(!dialog.allowAlwaysButton()->isEnabled());
    QVERIFY(dialog.denyButton()->isEnabled());
    QSignalSpy armed(&dialog, &ConsentDialog::armed);
    dialog.show();
    QTRY_VERIFY(dialog.isArmed());
    QCOMPARE(armed.size(), 1);
    QVERIFY(dialog.allowOnceButton()->isEnabled());
    QVERIFY(dialog.allowAlwaysButton()->isEnabled());
  }

  void clickBeforeArmedDoesNothing() {
    ConsentDialog::setArmDelayMs(60 * 60 * 1000);
    ConsentDialog dialog(MakeRequest(QStringLiteral("1"), QStringLiteral("https://xenova.github.io")));
    ConsentDialog::setArmDelayMs(50);
    dialog.show();
    QTest::mouseClick(dialog.allowOnceButton(), Qt::LeftButton);
    dialog.allowAlwaysButton()->click();
    QCOMPARE(dialog.decision(), QString());
    QVERIFY(dialog.isVisible());
  }

  void decisions_data() {
    QTest::addColumn<QString>("button");
    QTest::addColumn<QString>("decision");
    QTest::newRow("allow once") << "allowOnce" << kAllowOnce;
    QTest::newRow("allow always") << "allowAlways" << kAllowAlways;
    QTest::newRow("deny") << "deny" << kDeny;
  }

  void decisions() {
    QFETCH(QString, button);
    QFETCH(QString, decision);
    ConsentDialog dialog(MakeRequest(QStringLiteral("1"), QStringLiteral("https://xenova.github.io")));
    QSignalSpy decided(&dialog, &ConsentDialog::decided);
    dialog.show();
    QTRY_VERIFY(dialog.isArmed());
    QTest::mouseClick(dialog.findChild<QPushButton*>(button), Qt::LeftButton);
    QCOMPARE(decided.size(), 1);
    QCOMPARE(decided.at(0).at(0).toString(), decision);
    QCOMPARE(dialog.decision(), decision);
    QVERIFY(!dialog.isVisible());
  }

  void escapeDenies() {
    ConsentDialog dialog(MakeRequest(QStringLiteral("1"), QStringLiteral("https://xenova.github.io")));
    QSignalSpy decided(&dialog, &ConsentDialog::decided);
    dialog.show();
    QTRY_VERIFY(dialog.isArmed());
    QTest::keyClick(&dialog, Qt::Key_Escape);
    QCOMPARE(decided.size(), 1);
    QCOMPARE(dialog.decision(), QLatin1String(kDeny));
  }

  void enterNeverAllows() {
    {
      ConsentDialog dialog(MakeRequest(QStringLiteral("1"), QStringLiteral("https://xenova.github.io")));
      dialog.show();
      QTRY_VERIFY(dialog.isArmed());
      QTest::keyClick(&dialog, Qt::Key_Return);
      QCOMPARE(dialog.decision(), QLatin1String(kDeny));
    }
    // Not even with the focus on an allow button.
    for (const char* name : {"allowOnce", "allowAlways"}) {
      for (Qt::Key key : {Qt::Key_Return, Qt::Key_Enter}) {
        ConsentDialog dialog(MakeRequest(QStringLiteral("1"), QStringLiteral("https://xenova.github.io")));
        dialog.show();
        QTRY_VERIFY(dialog.isArmed());
        auto* button = dialog.findChild<QPushButton*>(QLatin1String(name));
        button->setFocus();
        QTest::keyClick(button, key);
        QVERIFY2(dialog.decision() != QLatin1String(kAllowOnce) && dialog.decision() != QLatin1String(kAllowAlways),
                 qPrintable(dialog.decision()));
      }
    }
  }

  void closingDenies() {
    ConsentDialog dialog(MakeRequest(QStringLiteral("1"), QStringLiteral("https://xenova.github.io")));
    QSignalSpy decided(&dialog, &ConsentDialog::decided);
    dialog.show();
    QVERIFY(dialog.close());
    QCOMPARE(decided.size(), 1);
    QCOMPARE(dialog.decision(), QLatin1String(kDeny));
  }

  void destroyingDenies() {
    auto* dialog = new ConsentDialog(MakeRequest(QStringLiteral("1"), QStringLiteral("https://xenova.github.io")));
    QString decision;
    connect(dialog, &ConsentDialog::decided, this, [&decision](const QString& d) { decision = d; });
    dialog->show();
    delete dialog;
    QCOMPARE(decision, QLatin1String(kDeny));
  }

  // --- the queue ---------------------------------------------------------

  void queueShowsOneDialogAtATime() {
    QStringList replies;  // outlives the queue, which answers in its destructor
    ConsentQueue queue;
    queue.enqueue(MakeRequest(QStringLiteral("a"), QStringLiteral("https://xenova.github.io")),
                  [&](const QString& d) { replies << QStringLiteral("a:") + d; });
    queue.enqueue(MakeRequest(QStringLiteral("b"), QStringLiteral("https://login.huggingface.co.evil.example")),
                  [&](const QString& d) { replies << QStringLiteral("b:") + d; });
    QTRY_VERIFY(queue.currentDialog() != nullptr);
    QCOMPARE(VisibleDialogs().size(), 1);
    QCOMPARE(queue.currentDialog()->request().id, QStringLiteral("a"));
    QCOMPARE(queue.pendingIds(), (QStringList{QStringLiteral("a"), QStringLiteral("b")}));
    QCOMPARE(Text(queue.currentDialog(), "waiting"), QStringLiteral("1 more request is waiting."));
    QVERIFY(!queue.currentDialog()->isModal());

    QTRY_VERIFY(queue.currentDialog()->isArmed());
    queue.currentDialog()->allowOnceButton()->click();
    QCOMPARE(replies, QStringList{QStringLiteral("a:allow-once")});
    QTRY_VERIFY(queue.currentDialog() != nullptr);
    QCOMPARE(queue.currentDialog()->request().id, QStringLiteral("b"));
    QTRY_COMPARE(VisibleDialogs().size(), 1);
    QVERIFY(queue.currentDialog()->findChild<QLabel*>(QStringLiteral("waiting"))->isHidden());
    QCOMPARE(Text(queue.currentDialog(), "site"), QStringLiteral("evil.example"));

    QSignalSpy idle(&queue, &ConsentQueue::idle);
    QTest::keyClick(queue.currentDialog(), Qt::Key_Escape);
    QCOMPARE(replies, (QStringList{QStringLiteral("a:allow-once"), QStringLiteral("b:deny")}));
    QTRY_COMPARE(idle.size(), 1);
    QCOMPARE(queue.currentDialog(), nullptr);
    QTRY_COMPARE(VisibleDialogs().size(), 0);
  }

  void cancelVisibleAnswersDenyAndShowsNext() {
    QStringList replies;  // outlives the queue, which answers in its destructor
    ConsentQueue queue;
    QSignalSpy answered(&queue, &ConsentQueue::answered);
    queue.enqueue(MakeRequest(QStringLiteral("a"), QStringLiteral("https://xenova.github.io")),
                  [&](const QString& d) { replies << QStringLiteral("a:") + d; });
    queue.enqueue(MakeRequest(QStringLiteral("b"), QStringLiteral("https://huggingface.co")),
                  [&](const QString& d) { replies << QStringLiteral("b:") + d; });
    QTRY_VERIFY(queue.currentDialog() != nullptr);
    QPointer<ConsentDialog> first = queue.currentDialog();
    QVERIFY(queue.cancel(QStringLiteral("a")));
    QCOMPARE(replies, QStringList{QStringLiteral("a:deny")});
    QCOMPARE(answered.size(), 1);
    QCOMPARE(answered.at(0).at(2).toBool(), true);  // cancelled
    QVERIFY(first.isNull() || !first->isVisible());
    QTRY_VERIFY(queue.currentDialog() != nullptr && queue.currentDialog()->request().id == QLatin1String("b"));
    QTRY_COMPARE(VisibleDialogs().size(), 1);
    QVERIFY(!queue.cancel(QStringLiteral("a")));  // answered once only
    QVERIFY(!queue.cancel(QStringLiteral("unknown")));
    QCOMPARE(replies.size(), 1);
  }

  void cancelQueuedLeavesVisibleAlone() {
    QStringList replies;  // outlives the queue, which answers in its destructor
    ConsentQueue queue;
    for (const char* id : {"a", "b", "c"}) {
      queue.enqueue(MakeRequest(QLatin1String(id), QStringLiteral("https://xenova.github.io")),
                    [&replies, id](const QString& d) { replies << QLatin1String(id) + QLatin1Char(':') + d; });
    }
    QTRY_VERIFY(queue.currentDialog() != nullptr);
    ConsentDialog* visible = queue.currentDialog();
    QCOMPARE(Text(visible, "waiting"), QStringLiteral("2 more requests are waiting."));
    QVERIFY(queue.cancel(QStringLiteral("b")));
    QCOMPARE(replies, QStringList{QStringLiteral("b:deny")});
    QCOMPARE(queue.currentDialog(), visible);
    QVERIFY(visible->isVisible());
    QCOMPARE(Text(visible, "waiting"), QStringLiteral("1 more request is waiting."));
    QCOMPARE(queue.pendingIds(), (QStringList{QStringLiteral("a"), QStringLiteral("c")}));
  }

  void duplicateIdIsDenied() {
    QStringList replies;  // outlives the queue, which answers in its destructor
    ConsentQueue queue;
    QVERIFY(queue.enqueue(MakeRequest(QStringLiteral("a"), QStringLiteral("https://xenova.github.io")),
                          [&](const QString& d) { replies << d; }));
    QVERIFY(!queue.enqueue(MakeRequest(QStringLiteral("a"), QStringLiteral("https://xenova.github.io")),
                           [&](const QString& d) { replies << QStringLiteral("dup:") + d; }));
    QCOMPARE(replies, QStringList{QStringLiteral("dup:deny")});
  }

  void destroyingQueueAnswersEverything() {
    QStringList replies;
    {
      ConsentQueue queue;
      for (const char* id : {"a", "b"}) {
        queue.enqueue(MakeRequest(QLatin1String(id), QStringLiteral("https://xenova.github.io")),
                      [&replies, id](const QString& d) { replies << QLatin1String(id) + QLatin1Char(':') + d; });
      }
      QTRY_VERIFY(queue.currentDialog() != nullptr);
    }
    replies.sort();
    QCOMPARE(replies, (QStringList{QStringLiteral("a:deny"), QStringLiteral("b:deny")}));
  }

  void autoAnswerClicksTheButton_data() {
    QTest::addColumn<QString>("answer");
    QTest::newRow("allow-once") << kAllowOnce;
    QTest::newRow("allow-always") << kAllowAlways;
    QTest::newRow("deny") << kDeny;
  }

  void autoAnswerClicksTheButton() {
    QFETCH(QString, answer);
    QStringList replies;
    ConsentQueue queue;
    QVERIFY(queue.setAutoAnswer(answer));
    QList<bool> clicked;
    connect(&queue, &ConsentQueue::dialogShown, this, [&clicked](ConsentDialog* d) {
      for (QPushButton* b : {d->allowOnceButton(), d->allowAlwaysButton(), d->denyButton()}) {
        connect(b, &QPushButton::clicked, [&clicked] { clicked << true; });
      }
    });
    queue.enqueue(MakeRequest(QStringLiteral("a"), QStringLiteral("https://xenova.github.io")),
                  [&](const QString& d) { replies << d; });
    queue.enqueue(MakeRequest(QStringLiteral("b"), QStringLiteral("https://huggingface.co")),
                  [&](const QString& d) { replies << d; });
    QTRY_COMPARE(replies.size(), 2);
    QCOMPARE(replies, (QStringList{answer, answer}));
    QCOMPARE(clicked.size(), 2);  // through the buttons, as a user would
  }

  void autoAnswerRejectsNonsense() {
    ConsentQueue queue;
    QVERIFY(!queue.setAutoAnswer(QStringLiteral("yes")));
    qputenv("COSTORE_CONSENT_AUTOANSWER", "allow");
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(QStringLiteral("ignoring COSTORE_CONSENT_AUTOANSWER")));
    QVERIFY(!queue.setAutoAnswerFromEnvironment());
    qputenv("COSTORE_CONSENT_AUTOANSWER", "deny");
    QVERIFY(queue.setAutoAnswerFromEnvironment());
    qunsetenv("COSTORE_CONSENT_AUTOANSWER");
  }

  void requestFromVariantMap() {
    const ConsentRequest original = MakeRequest(QStringLiteral("r1"), QStringLiteral("https://xenova.github.io"));
    ConsentRequest parsed;
    QString error;
    QVERIFY2(ConsentRequest::FromVariantMap(original.ToVariantMap(), &parsed, &error), qPrintable(error));
    QCOMPARE(parsed.id, original.id);
    QCOMPARE(parsed.files.size(), 1);
    QCOMPARE(parsed.files[0].size, quint64(2327524));
    QCOMPARE(parsed.attribution.size(), 2);
    QCOMPARE(parsed.attribution[0].reads, 3u);
    QVERIFY(parsed.attribution[0].stored);
    QVERIFY(!parsed.deferred);
    ConsentRequest deferred = original;
    deferred.deferred = true;
    QVERIFY2(ConsentRequest::FromVariantMap(deferred.ToVariantMap(), &parsed, &error), qPrintable(error));
    QVERIFY(parsed.deferred);

    QVariantMap bad = original.ToVariantMap();
    bad.remove(QStringLiteral("files"));
    QVERIFY(!ConsentRequest::FromVariantMap(bad, &parsed, &error));
    QVERIFY(error.contains(QStringLiteral("files")));
    bad = original.ToVariantMap();
    bad[QStringLiteral("id")] = 7;
    QVERIFY(!ConsentRequest::FromVariantMap(bad, &parsed, &error));
  }

  // --- screenshots --------------------------------------------------------

  void screenshot() {
    ConsentRequest r = MakeRequest(QStringLiteral("shot"), QStringLiteral("https://xenova.github.io"));
    ConsentDialog dialog(r);
    dialog.setWaitingCount(0);
    dialog.show();
    QTRY_VERIFY(dialog.isArmed());
    dialog.adjustSize();
    QVERIFY(!test::SaveScreenshot(&dialog, QStringLiteral("consent-dialog")).isEmpty());

    ConsentDialog lookalike(MakeRequest(QStringLiteral("shot2"), QStringLiteral("https://login.huggingface.co.evil.example")));
    lookalike.setWaitingCount(1);
    lookalike.show();
    QTRY_VERIFY(lookalike.isArmed());
    lookalike.adjustSize();
    QVERIFY(!test::SaveScreenshot(&lookalike, QStringLiteral("consent-dialog-lookalike")).isEmpty());
  }
};

QTEST_MAIN(DialogTest)
#include "dialog_test.moc"
