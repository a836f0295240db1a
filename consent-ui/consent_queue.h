// The consent requests waiting for the user: one dialog on screen at a time,
// the rest queued behind it, every request answered exactly once.
#pragma once

#include <QList>
#include <QObject>
#include <QPointer>
#include <QString>
#include <functional>
#include <optional>

#include "consent-ui/consent_dialog.h"
#include "consent-ui/consent_request.h"

namespace costore::ui {

class ConsentQueue : public QObject {
  Q_OBJECT

 public:
  // Called exactly once per request with the decision to send.
  using Reply = std::function<void(const QString& decision)>;

  explicit ConsentQueue(QObject* parent = nullptr);
  // Answers every pending request kDeny.
  ~ConsentQueue() override;

  // Shows the request now if nothing is on screen, else queues it. A request
  // whose id is already pending is answered kDeny at once (false).
  bool enqueue(const ConsentRequest& request, Reply reply);

  // The request is moot: closes its dialog or drops it from the queue, and
  // answers it kDeny so the caller's pending call does not leak. false for
  // an unknown id.
  bool cancel(const QString& id);
  void cancelAll();

  ConsentDialog* currentDialog() const { return dialog_; }
  // Requests not yet answered, the one on screen first.
  QStringList pendingIds() const;
  int pendingCount() const { return static_cast<int>(pendingIds().size()); }

  // After each dialog is armed, click this button (kAllowOnce, kAllowAlways,
  // kDeny) through QAbstractButton::click(), the user's own code path; ""
  // turns it off. For end-to-end tests of the real agent.
  bool setAutoAnswer(const QString& decision);
  // Reads COSTORE_CONSENT_AUTOANSWER; false (and a warning) for a bad value.
  bool setAutoAnswerFromEnvironment();

 Q_SIGNALS:
  void dialogShown(costore::ui::ConsentDialog* dialog);
  void answered(const QString& id, const QString& decision, bool cancelled);
  // Nothing on screen and nothing queued.
  void idle();

 private:
  struct Entry {
    ConsentRequest request;
    Reply reply;
  };

  void showNextLater();
  void showNext();
  void onDecided(const QString& decision);
  void updateWaiting();

  QList<Entry> waiting_;
  std::optional<Entry> current_;
  QPointer<ConsentDialog> dialog_;
  QString auto_answer_;
  bool show_scheduled_ = false;
};

}  // namespace costore::ui
