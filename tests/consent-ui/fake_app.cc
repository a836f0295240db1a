// A stand-in for a browser in the UI tests: built as "chromium" and as
// "firefox", so that the daemon, which names an app after its executable,
// records realistic principals. It only calls Store1.
//
//   chromium store ORIGIN FILE DIGEST NAME   exit 0, or 2 with the D-Bus error on stderr
//   chromium open ORIGIN DIGEST              exit 0 (prints the size), or 2
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <QCoreApplication>
#include <QDBusConnection>
#include <QDBusMessage>
#include <QDBusUnixFileDescriptor>
#include <QFile>
#include <QVariantMap>

#include <cstdio>

namespace {

int Fail(const QDBusMessage& reply) {
  std::fprintf(stderr, "%s: %s\n", qPrintable(reply.errorName()), qPrintable(reply.errorMessage()));
  return 2;
}

QDBusMessage Call(const QString& method, const QVariantList& args) {
  QDBusMessage call = QDBusMessage::createMethodCall(QStringLiteral("io.github.costore"), QStringLiteral("/io/github/costore"),
                                                     QStringLiteral("io.github.costore.Store1"), method);
  call.setArguments(args);
  // Open may wait for the user (the consent agent): longer than the
  // daemon's own consent timeout.
  return QDBusConnection::sessionBus().call(call, QDBus::Block, 180 * 1000);
}

}  // namespace

int main(int argc, char** argv) {
  QCoreApplication app(argc, argv);
  const QStringList args = QCoreApplication::arguments();
  if (args.size() == 6 && args.at(1) == QLatin1String("store")) {
    const int fd = ::open(QFile::encodeName(args.at(3)).constData(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      std::perror("open");
      return 1;
    }
    struct stat st {};
    ::fstat(fd, &st);
    QVariantMap options{{QStringLiteral("size"), QVariant::fromValue<qulonglong>(static_cast<qulonglong>(st.st_size))},
                        {QStringLiteral("name"), args.at(5)}};
    const QDBusMessage reply =
        Call(QStringLiteral("Store"), {args.at(2), args.at(4), QVariant::fromValue(QDBusUnixFileDescriptor(fd)), options});
    ::close(fd);
    if (reply.type() != QDBusMessage::ReplyMessage) return Fail(reply);
    return 0;
  }
  if (args.size() == 4 && args.at(1) == QLatin1String("open")) {
    const QDBusMessage reply = Call(QStringLiteral("Open"), {args.at(2), args.at(3), QVariantMap()});
    if (reply.type() != QDBusMessage::ReplyMessage) return Fail(reply);
    const auto fd = reply.arguments().value(0).value<QDBusUnixFileDescriptor>();
    struct stat st {};
    if (!fd.isValid() || ::fstat(fd.fileDescriptor(), &st) != 0) {
      std::fprintf(stderr, "no readable descriptor in the reply\n");
      return 1;
    }
    std::printf("%lld\n", static_cast<long long>(st.st_size));
    return 0;
  }
  std::fprintf(stderr, "usage: %s store ORIGIN FILE DIGEST NAME | open ORIGIN DIGEST\n", argv[0]);
  return 1;
}
