#include "consent-ui/consent_queue.h"

#include <QPushButton>
#include <QTimer>

#include "consent-ui/consent_dialog.h"

namespace costore::ui {

ConsentQueue::ConsentQueue(QObject* parent) : QObject(parent) {}

ConsentQueue::~ConsentQueue() {
  cancelAll();
}

QStringList ConsentQueue::pendingIds() const {
  QStringList ids;
  if (current_) ids << current_->request.id;
  for (const auto& e : waiting_) ids << e.request.id;
  return ids;
}

bool ConsentQueue::enqueue(const ConsentRequest& request, Reply reply) {
  if (pendingIds().contains(request.id)) {
    reply(QLatin1String(kDeny));
    return false;
  }
  waiting_.append(Entry{request, std::move(reply)});
  if (!current_) {
    showNextLater();
  } else {
    updateWaiting();
  }
  return true;
}

bool ConsentQueue::cancel(const QString& id) {
  if (current_ && current_->request.id == id) {
    Entry entry = std::move(*current_);
    current_.reset();
    if (dialog_) {
      ConsentDialog* dialog = dialog_;
      dialog_ = nullptr;
      dialog->disconnect(this);
      dialog->cancel();
      dialog->deleteLater();
    }
    entry.reply(QLatin1String(kDeny));
    Q_EMIT answered(id, QLatin1String(kDeny), true);
    showNextLater();
    return true;
  }
  for (qsizetype i = 0; i < waiting_.size(); ++i) {
    if (waiting_.at(i).request.id != id) continue;
    Entry entry = waiting_.takeAt(i);
    entry.reply(QLatin1String(kDeny));
    Q_EMIT answered(id, QLatin1String(kDeny), true);
    updateWaiting();
    return true;
  }
  return false;
}

void ConsentQueue::cancelAll() {
  while (!waiting_.isEmpty()) cancel(waiting_.constLast().request.id);
  if (current_) cancel(current_->request.id);
}

bool ConsentQueue::setAutoAnswer(const QString& decision) {
  if (!decision.isEmpty() && decision != QLatin1String(kAllowOnce) && decision != QLatin1String(kAllowAlways) &&
      decision != QLatin1String(kDeny)) {
    return false;
  }
  auto_answer_ = decision;
  return true;
}

bool ConsentQueue::setAutoAnswerFromEnvironment() {
  const QString value = qEnvironmentVariable("COSTORE_CONSENT_AUTOANSWER");
  if (setAutoAnswer(value)) return true;
  qWarning("costore-consent: ignoring COSTORE_CONSENT_AUTOANSWER=%s (use allow-once, allow-always or deny)",
           qPrintable(value));
  return false;
}

void ConsentQueue::showNextLater() {
  // Not from inside the previous dialog's done(): the next dialog appears
  // once the last one is gone.
  if (show_scheduled_) return;
  show_scheduled_ = true;
  QTimer::singleShot(0, this, [this] {
    show_scheduled_ = false;
    showNext();
  });
}

void ConsentQueue::showNext() {
  if (current_) return;
  if (waiting_.isEmpty()) {
    Q_EMIT idle();
    return;
  }
  current_ = waiting_.takeFirst();
  auto* dialog = new ConsentDialog(current_->request);
  dialog_ = dialog;
  connect(dialog, &ConsentDialog::decided, this, &ConsentQueue::onDecided);
  if (!auto_answer_.isEmpty()) {
    QPushButton* button = auto_answer_ == QLatin1String(kAllowOnce)     ? dialog->allowOnceButton()
                          : auto_answer_ == QLatin1String(kAllowAlways) ? dialog->allowAlwaysButton()
                                                                        : dialog->denyButton();
    connect(dialog, &ConsentDialog::armed, button, [button] {
      QTimer::singleShot(0, button, [button] { button->click(); });
    });
  }
  updateWaiting();
  dialog->show();
  Q_EMIT dialogShown(dialog);
}

void ConsentQueue::onDecided(const QString& decision) {
  auto* dialog = qobject_cast<ConsentDialog*>(sender());
  if (dialog == nullptr || dialog != dialog_ || !current_) return;
  Entry entry = std::move(*current_);
  current_.reset();
  dialog_ = nullptr;
  dialog->disconnect(this);
  dialog->hide();
  dialog->deleteLater();
  entry.reply(decision);
  Q_EMIT answered(entry.request.id, decision, false);
  showNextLater();
}

void ConsentQueue::updateWaiting() {
  if (dialog_) dialog_->setWaitingCount(static_cast<int>(waiting_.size()));
}

}  // namespace costore::ui
