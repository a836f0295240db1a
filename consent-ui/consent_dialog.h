// The question for one ConsentAgent1.RequestConsent: may this site (or app)
// read files that others stored?
#pragma once

#include <QDialog>
#include <QString>

#include "consent-ui/consent_request.h"

class QLabel;
class QPushButton;
class QTimer;

namespace costore::ui {

class ConsentDialog : public QDialog {
  Q_OBJECT

 public:
  explicit ConsentDialog(const ConsentRequest& request, QWidget* parent = nullptr);
  ~ConsentDialog() override;

  const ConsentRequest& request() const { return request_; }

  QPushButton* allowOnceButton() const { return allow_once_; }
  QPushButton* allowAlwaysButton() const { return allow_always_; }
  QPushButton* denyButton() const { return deny_; }

  // "" until the dialog is done; then one of kAllowOnce, kAllowAlways, kDeny.
  QString decision() const { return decision_; }
  bool wasCancelled() const { return cancelled_; }

  // The allow buttons stay disabled for a moment after the dialog appears,
  // so that a click or key press meant for another window cannot answer it
  // (browsers do the same for their permission prompts).
  bool isArmed() const { return armed_; }
  static void setArmDelayMs(int ms);
  static int armDelayMs();

  // "2 more requests are waiting"; hidden for 0.
  void setWaitingCount(int waiting);

  // Closes the dialog as moot (Cancel from the daemon): decided() carries
  // kDeny and wasCancelled() is true.
  void cancel();

 Q_SIGNALS:
  // Emitted exactly once, when the dialog is done, however it ends: a
  // button, Esc, closing the window, cancel() or destruction.
  void decided(const QString& decision);
  // The allow buttons became clickable.
  void armed();

 protected:
  void showEvent(QShowEvent* event) override;

 public Q_SLOTS:
  void done(int result) override;

 private:
  void decide(const char* decision);
  void arm();

  ConsentRequest request_;
  QString decision_;
  bool cancelled_ = false;
  bool armed_ = false;
  bool emitted_ = false;
  QPushButton* allow_once_ = nullptr;
  QPushButton* allow_always_ = nullptr;
  QPushButton* deny_ = nullptr;
  QLabel* waiting_ = nullptr;
  QTimer* arm_timer_ = nullptr;
};

}  // namespace costore::ui
