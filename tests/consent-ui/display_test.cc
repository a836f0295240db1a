// How the UI names sites, apps, sizes, digests and times.
#include <QApplication>
#include <QTest>

#include "consent-ui/display.h"
#include "test_support.h"

using namespace costore::ui;

class DisplayTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() { test::UseTestDesktop(); }

  void siteOfOrigin_data() {
    QTest::addColumn<QString>("origin");
    QTest::addColumn<QString>("site");
    QTest::addColumn<QString>("host");
    QTest::addColumn<bool>("secure");
    QTest::newRow("plain") << "https://huggingface.co" << "huggingface.co" << "huggingface.co" << true;
    QTest::newRow("subdomain") << "https://cdn-lfs.huggingface.co" << "huggingface.co" << "cdn-lfs.huggingface.co"
                               << true;
    // The look-alike: everything left of the registrable domain is the
    // attacker's to choose.
    QTest::newRow("look-alike") << "https://login.huggingface.co.evil.example" << "evil.example"
                                << "login.huggingface.co.evil.example" << true;
    QTest::newRow("multi-label suffix") << "https://models.example.co.uk" << "example.co.uk"
                                        << "models.example.co.uk" << true;
    // github.io is a public suffix: each user's pages are their own site.
    QTest::newRow("private suffix") << "https://xenova.github.io" << "xenova.github.io" << "xenova.github.io" << true;
    QTest::newRow("suffix itself") << "https://github.io" << "github.io" << "github.io" << true;
    QTest::newRow("uppercase") << "https://HuggingFace.CO" << "huggingface.co" << "huggingface.co" << true;
    QTest::newRow("port") << "https://huggingface.co:8443" << "huggingface.co" << "huggingface.co" << true;
    QTest::newRow("http") << "http://models.example.com" << "example.com" << "models.example.com" << false;
    QTest::newRow("localhost") << "http://localhost:8080" << "localhost:8080" << "localhost" << true;
    QTest::newRow("ipv4") << "http://192.168.1.20:5000" << "192.168.1.20:5000" << "192.168.1.20" << false;
    QTest::newRow("loopback") << "http://127.0.0.1:3000" << "127.0.0.1:3000" << "127.0.0.1" << true;
    QTest::newRow("ipv6") << "http://[::1]:3000" << "[::1]:3000" << "::1" << true;
    QTest::newRow("punycode stays ascii") << "https://xn--hggingface-r9a.co" << "xn--hggingface-r9a.co"
                                          << "xn--hggingface-r9a.co" << true;
    QTest::newRow("userinfo") << "https://huggingface.co@evil.example" << "evil.example" << "evil.example" << true;
    QTest::newRow("extension") << "chrome-extension://abcdefghijklmnop" << "chrome-extension://abcdefghijklmnop"
                               << "abcdefghijklmnop" << false;
  }

  void siteOfOrigin() {
    QFETCH(QString, origin);
    QFETCH(QString, site);
    QFETCH(QString, host);
    QFETCH(bool, secure);
    const SiteDisplay d = DescribeOrigin(origin);
    QCOMPARE(d.site, site);
    QCOMPARE(d.host, host);
    QCOMPARE(d.secure, secure);
    QVERIFY(d.parsed);
    QCOMPARE(d.origin, origin);
  }

  void unparsableOriginShownWhole() {
    const SiteDisplay d = DescribeOrigin(QStringLiteral("null"));
    QVERIFY(!d.parsed);
    QCOMPARE(d.site, QStringLiteral("null"));
    QCOMPARE(DescribeOrigin(QStringLiteral("https://[::1")).site, QStringLiteral("https://[::1"));
    QCOMPARE(DescribeOrigin(QStringLiteral("https://example.com:99999")).site, QStringLiteral("https://example.com:99999"));
  }

  void registrableDomain() {
    QCOMPARE(RegistrableDomain(QStringLiteral("a.b.c.evil.example")), QStringLiteral("evil.example"));
    QCOMPARE(RegistrableDomain(QStringLiteral("www.bbc.co.uk")), QStringLiteral("bbc.co.uk"));
    QCOMPARE(RegistrableDomain(QStringLiteral("huggingface.co.")), QStringLiteral("huggingface.co"));
    QCOMPARE(RegistrableDomain(QStringLiteral("co.uk")), QString());
    QCOMPARE(RegistrableDomain(QStringLiteral("10.0.0.1")), QString());
  }

  void sizes_data() {
    QTest::addColumn<quint64>("bytes");
    QTest::addColumn<QString>("text");
    QTest::newRow("0") << quint64(0) << "0 bytes";
    QTest::newRow("1") << quint64(1) << "1 byte";
    QTest::newRow("999") << quint64(999) << "999 bytes";
    QTest::newRow("1000") << quint64(1000) << "1.0 kB";
    QTest::newRow("silero") << quint64(2327524) << "2.3 MB";
    QTest::newRow("silero 16k") << quint64(1289603) << "1.3 MB";
    QTest::newRow("rounds up a unit") << quint64(999960) << "1.0 MB";
    QTest::newRow("123 MB") << quint64(123456789) << "123 MB";
    QTest::newRow("gguf") << quint64(4920734272ULL) << "4.9 GB";
    QTest::newRow("max") << std::numeric_limits<quint64>::max() << "18.4 EB";
  }

  void sizes() {
    QFETCH(quint64, bytes);
    QFETCH(QString, text);
    QCOMPARE(FormatSize(bytes), text);
  }

  void shortDigest() {
    QCOMPARE(ShortDigest(QStringLiteral("sha256:1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3")),
             QStringLiteral("sha256:1a153a22f450…8788e3"));
    QCOMPARE(ShortDigest(QStringLiteral("*")), QStringLiteral("*"));
  }

  void when() {
    const QDateTime now = QDateTime(QDate(2025, 3, 20), QTime(12, 0), Qt::UTC);
    auto at = [&](qint64 seconds_ago) { return (now.toMSecsSinceEpoch() - seconds_ago * 1000) * 1000; };
    QCOMPARE(FormatWhen(0, now), QStringLiteral("never"));
    QCOMPARE(FormatWhen(at(5), now), QStringLiteral("just now"));
    QCOMPARE(FormatWhen(at(-30), now), QStringLiteral("just now"));
    QCOMPARE(FormatWhen(at(60), now), QStringLiteral("1 minute ago"));
    QCOMPARE(FormatWhen(at(3 * 3600 + 5), now), QStringLiteral("3 hours ago"));
    QCOMPARE(FormatWhen(at(30 * 3600), now), QStringLiteral("yesterday"));
    QCOMPARE(FormatWhen(at(4 * 86400), now), QStringLiteral("4 days ago"));
    QVERIFY(FormatWhen(at(40 * 86400), now).contains(QStringLiteral("Feb")));
  }

  void sanitize() {
    // A right-to-left override would show "gnp.exe" as "exe.png".
    QCOMPARE(Sanitize(QString::fromUtf8("model\u202Egnp.onnx")), QString::fromUtf8("model\uFFFDgnp.onnx"));
    QCOMPARE(Sanitize(QString::fromUtf8("a\u200Bb\nc")), QString::fromUtf8("a\uFFFDb\uFFFDc"));
    QCOMPARE(Sanitize(QString::fromUtf8("tag\U000E0041")), QString::fromUtf8("tag\uFFFD"));
    QCOMPARE(Sanitize(QString::fromUtf8("Модель 🤗.onnx")), QString::fromUtf8("Модель 🤗.onnx"));
  }

  void nameLeaf() {
    QCOMPARE(NameLeaf(QStringLiteral("onnx-community/silero-vad/onnx/model.onnx")), QStringLiteral("model.onnx"));
    QCOMPARE(NameLeaf(QStringLiteral("model.onnx")), QStringLiteral("model.onnx"));
    QCOMPARE(NameLeaf(QStringLiteral("dir/")), QStringLiteral("dir/"));
  }

  void appFromExecutable() {
    const AppDisplay chromium = DescribeApp(QStringLiteral("/usr/lib/chromium/chromium"));
    QCOMPARE(chromium.name, QStringLiteral("chromium"));
    QCOMPARE(chromium.kind, QString());
    QCOMPARE(chromium.desktop_id, QStringLiteral("chromium.desktop"));
    QVERIFY(chromium.has_own_icon);

    const AppDisplay quoted = DescribeApp(QStringLiteral("/opt/My Tools/bin/quoted-tool"));
    QCOMPARE(quoted.desktop_id, QStringLiteral("vim-like.desktop"));
    QVERIFY(!quoted.has_own_icon);  // its Icon= file does not exist
    QVERIFY(!quoted.icon.isNull());  // the generic one

    const AppDisplay unknown = DescribeApp(QStringLiteral("/opt/tools/llama-server"));
    QCOMPARE(unknown.name, QStringLiteral("llama-server"));
    QCOMPARE(unknown.desktop_id, QString());
    QVERIFY(!unknown.has_own_icon);
    QVERIFY(!unknown.icon.isNull());

    QCOMPARE(DescribeApp(QStringLiteral("/usr/bin/hidden-tool")).desktop_id, QString());
  }

  void appFromFlatpakAndSnap() {
    const AppDisplay flatpak = DescribeApp(QStringLiteral("flatpak:org.mozilla.firefox"));
    QCOMPARE(flatpak.name, QStringLiteral("org.mozilla.firefox"));
    QCOMPARE(flatpak.kind, QStringLiteral("Flatpak"));
    QCOMPARE(flatpak.desktop_id, QStringLiteral("org.mozilla.firefox.desktop"));
    QVERIFY(flatpak.has_own_icon);

    const AppDisplay snap = DescribeApp(QStringLiteral("snap:firefox"));
    QCOMPARE(snap.name, QStringLiteral("firefox"));
    QCOMPARE(snap.kind, QStringLiteral("Snap"));
    QCOMPARE(snap.desktop_id, QStringLiteral("firefox_firefox.desktop"));
  }

  void sandboxedAppCannotBorrowAName() {
    // com.example.Spoof exports a .desktop file called "Firefox": the name
    // shown stays the id the kernel vouches for.
    const AppDisplay spoof = DescribeApp(QStringLiteral("flatpak:com.example.Spoof"));
    QCOMPARE(spoof.desktop_id, QStringLiteral("com.example.Spoof.desktop"));
    QCOMPARE(spoof.name, QStringLiteral("com.example.Spoof"));
  }

  void principal() {
    QCOMPARE(DescribePrincipal(QStringLiteral("/usr/lib/chromium/chromium"), QStringLiteral("https://huggingface.co")),
             QStringLiteral("huggingface.co (chromium)"));
    QCOMPARE(DescribePrincipal(QStringLiteral("/usr/bin/ollama"), QString()), QStringLiteral("ollama"));
    QCOMPARE(DescribePrincipal(QStringLiteral("flatpak:org.mozilla.firefox"), QStringLiteral("https://a.b.evil.example")),
             QStringLiteral("evil.example (org.mozilla.firefox)"));
  }
};

QTEST_MAIN(DisplayTest)
#include "display_test.moc"
