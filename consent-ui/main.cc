// costore-consent: the consent agent (--agent) or the manager window.
#include <QApplication>
#include <QCommandLineParser>
#include <QDBusConnection>
#include <QTextStream>

#include <cstdio>
#include <string_view>

#include "consent-ui/consent_agent.h"
#include "consent-ui/consent_queue.h"
#include "consent-ui/icons.h"
#include "consent-ui/manager_client.h"
#include "consent-ui/manager_window.h"

namespace {

int RunAgent(QApplication& app) {
  using costore::ui::ConsentAgent;
  using costore::ui::ConsentQueue;
  QApplication::setQuitOnLastWindowClosed(false);
  ConsentQueue queue;
  queue.setAutoAnswerFromEnvironment();
  ConsentAgent agent(QDBusConnection::sessionBus(), &queue);
  QObject::connect(&agent, &ConsentAgent::registered, [] {
    std::fprintf(stdout, "costore-consent: registered as the consent agent at %s\n", costore::ui::kAgentPath);
    std::fflush(stdout);
  });
  QObject::connect(&agent, &ConsentAgent::registrationFailed, &app,
                   [&app](const QString& name, const QString& message) {
                     std::fprintf(stderr, "costore-consent: cannot register with costored: %s (%s)\n",
                                  qPrintable(message), qPrintable(name));
                     // Another agent already answers for this user: leave it be.
                     if (name == QLatin1String("io.github.costore.Error.Busy")) app.exit(1);
                   });
  QObject::connect(&agent, &ConsentAgent::busDisconnected, &app, [&app] {
    std::fprintf(stderr, "costore-consent: the session bus went away; exiting\n");
    app.exit(0);
  });
  QObject::connect(&agent, &ConsentAgent::daemonVanished, [] {
    std::fprintf(stderr, "costore-consent: costored went away; waiting for it to come back\n");
  });
  QString error;
  if (!agent.start(&error)) {
    std::fprintf(stderr, "costore-consent: %s\n", qPrintable(error));
    return 1;
  }
  const int status = QApplication::exec();
  queue.cancelAll();
  return status;
}

void SetUpParser(QCommandLineParser* parser, const QCommandLineOption& agent_option) {
  parser->setApplicationDescription(
      QStringLiteral("Shows the model files kept by costored and who may use them. "
                     "With --agent, asks you when a site wants a file that others stored."));
  parser->addHelpOption();
  parser->addVersionOption();
  parser->addOption(agent_option);
}

void SetUpApplication() {
  QCoreApplication::setApplicationName(QStringLiteral("costore-consent"));
  QCoreApplication::setApplicationVersion(QStringLiteral(COSTORE_VERSION));
}

}  // namespace

int main(int argc, char** argv) {
  const QCommandLineOption agent_option(
      QStringLiteral("agent"),
      QStringLiteral("Run as the consent agent: register with costored and show its questions. "
                     "COSTORE_CONSENT_AUTOANSWER=allow-once|allow-always|deny answers each question itself "
                     "(for tests)."));
  // --help and --version need no display.
  bool informational = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    informational = informational || arg == "-h" || arg == "--help" || arg == "--help-all" || arg == "-v" ||
                    arg == "--version" || arg == "-?";
  }
  if (informational) {
    QCoreApplication probe(argc, argv);
    SetUpApplication();
    QCommandLineParser parser;
    SetUpParser(&parser, agent_option);
    parser.process(probe);  // prints and exits
  }

  QApplication app(argc, argv);
  SetUpApplication();
  QApplication::setApplicationDisplayName(QStringLiteral("costore"));
  QApplication::setDesktopFileName(QStringLiteral("io.github.costore.Consent"));
  QApplication::setWindowIcon(costore::ui::AppLogo());
  QCommandLineParser parser;
  SetUpParser(&parser, agent_option);
  parser.process(app);

  if (parser.isSet(agent_option)) return RunAgent(app);

  costore::ui::ManagerClient client(QDBusConnection::sessionBus());
  costore::ui::ManagerWindow window(&client);
  window.show();
  return QApplication::exec();
}
