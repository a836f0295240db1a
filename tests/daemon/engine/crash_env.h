// CrashEnv: an Env that remembers what is not yet durable, so that a test can
// crash the engine at any point and see the file system as a power cut would
// leave it. After LevelDB's FaultInjectionTestEnv (db/fault_injection_test.cc).
//
// Use: run the engine on a CrashEnv; crash it (SimulateCrash(), or
// CrashAfter(k) so that the (k+1)-th operation and every later one fail);
// destroy the engine; call DropUnsyncedData(); open a new engine on the
// same directory with Env::Default() and look at what survived.
//
// An operation is one call of an Env method or of a WritableFile method
// (Append, Sync, Close) made through this Env, failed or not; operations()
// counts them. A crash falls between two operations, never inside one.
//
// The process goes on after the crash (it only finds every operation
// failing), where a real one would be dead. So: a call of the engine that
// returns after the crash, even OK (NowMicros cannot fail), was never
// answered; and what does not go through this Env, the SQLite catalog,
// must be taken as it was at the crash: set_crash_hook() runs at that
// moment, to copy it, and the test puts the copy back after the drop.
//
// THE MODEL. A crash keeps:
//
//  * File data: the bytes of a file made through NewWritableFile up to its
//    last successful Sync() (none if it never synced). Bytes appended since
//    are dropped cleanly: the file is truncated to its synced length.
//
//  * Directory entries. NewWritableFile, Preallocate, CreateDirs and
//    LockStore (its lock file) add entries to a directory, RemoveFile
//    removes one, RenameNoReplace removes one and adds one (in two
//    directories if it moves a file). An entry change is kept if it was
//    made durable, as Semantics says:
//
//    kPosix (the default): by a successful SyncDir() of that directory
//      after the change. fsync of a file does not make its name durable.
//      The two halves of a rename are durable each on its own: if only the
//      target directory was synced, the file keeps both names (one inode,
//      two links); if only the source directory was, it has neither. A new
//      directory that its parent never made durable is lost with everything
//      below it, even entries made durable inside it: they were reachable
//      only through it. This is what POSIX promises and no more.
//
//    kJournaled (ext4 data=ordered, XFS): every successful Sync(),
//      SyncDir() or WriteFileAtomic() commits every directory change made
//      before it, anywhere on the file system (one journal, committed in
//      order). A rename is atomic.
//
//    Undurable changes are undone: a file whose creation was not durable is
//    removed, a removal that was not durable is undone (the file comes back
//    with its bytes), a rename that was not durable is moved back.
//    Moving or linking a file back changes its inode's ctime, which a real
//    crash would have left as it was in the durable state (no process can
//    set a ctime): touched_inodes() names the files so changed, so that a
//    test can tell a check of ctime that fires for this reason.
//
//  * Everything that existed before this Env touched it, and everything it
//    did not make, as it is (not tracked).
//
// What the model does not do:
//  * It produces one outcome of a crash: the one where everything not made
//    durable is lost. A real crash may keep more (ext4 commits its journal
//    every few seconds; writeback may have written unsynced bytes, even
//    zeros or part of them at the end of a file). Tests do not enumerate
//    those outcomes.
//  * Chmod and the space Preallocate gives a file are durable at once
//    (inode metadata; ext4 journals them with the next commit, POSIX
//    promises nothing until the file is fsynced).
//  * WriteFileAtomic is one durable step (it fsyncs its file and then its
//    directory); a crash inside it, or inside CreateDirs between two of the
//    directories it makes, is not modelled.
//  * Only calls made through this Env are seen. The SQLite catalog does its
//    own I/O: copied at the crash (above), every transaction it committed
//    before the crash survives, as after a process crash (on a power cut a
//    commit made with synchronous=NORMAL in WAL mode may be lost; that is
//    SQLite's to model, not this Env's).
//  * A renamed directory: the names below it are not followed.
//  * Calls of Env methods this class does not override (methods added to
//    Env after it) are forwarded by EnvWrapper unseen: neither counted,
//    nor failed after a crash, nor undone.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "daemon/engine/env.h"

namespace costore::test {

class CrashEnv : public EnvWrapper {
 public:
  enum class Semantics { kPosix, kJournaled };

  // `scratch_dir`: a directory of its own on the file system of the files
  // this Env will touch (created if missing), where removed files are kept
  // until DropUnsyncedData decides whether they come back.
  CrashEnv(Env* target, std::string scratch_dir, Semantics semantics = Semantics::kPosix);
  ~CrashEnv() override;
  CrashEnv(const CrashEnv&) = delete;
  CrashEnv& operator=(const CrashEnv&) = delete;

  // From now on every operation fails with IOError("... the process is
  // dead") and changes nothing; FileExists says false.
  void SimulateCrash();
  // Called once, at the moment the Env dies (on the thread whose operation
  // found it dead, before that operation returns): a test snapshots there
  // what a dead process would not change any more, such as a database
  // that does not go through this Env.
  void set_crash_hook(std::function<void()> hook) { crash_hook_ = std::move(hook); }
  bool crashed() const { return crashed_.load(); }
  // Crash right after operation number `k`: operation k+1 fails, and every
  // one after it (k = 0: the first one fails). -1 (the default): never.
  void CrashAfter(int64_t k) { crash_after_ = k; }
  // Operations so far, including failed ones.
  int64_t operations() const { return operations_.load(); }
  // The text of operation number `k` (1-based) as "Name path", for
  // messages; operations are recorded when `record_operations` is set.
  void set_record_operations(bool record) { record_operations_ = record; }
  std::string Operation(int64_t k) const;

  // Makes the file system look as the model says the crash left it, and
  // crashes this Env if it had not crashed yet. Call it once, after the
  // engine using this Env is destroyed. *report (if given) gets one line
  // per change: what was truncated, removed, restored or moved back.
  Status DropUnsyncedData(std::vector<std::string>* report = nullptr);
  // The inodes whose ctime DropUnsyncedData changed (by moving or linking
  // them back under an old name).
  const std::set<ino_t>& touched_inodes() const { return touched_inodes_; }

  Status NewWritableFile(const std::string& path, mode_t mode, std::unique_ptr<WritableFile>* out) override;
  Status LockStore(const std::string& root, std::unique_ptr<StoreLock>* lock) override;
  Status OpenReadOnly(const std::string& path, int* fd, FileStat* st) override;
  Status OpenReadOnlyView(const std::string& root, int* dir_fd) override;
  Status OpenReadOnlyBeneath(int dir_fd, const std::string& relative, const std::string& path, int* fd,
                             FileStat* st) override;
  Status Stat(const std::string& path, FileStat* st) override;
  Status RenameNoReplace(const std::string& from, const std::string& to, bool* existed) override;
  Status RemoveFile(const std::string& path) override;
  Status Chmod(const std::string& path, mode_t mode) override;
  Status CreateDirs(const std::string& path, mode_t mode) override;
  Status SyncDir(const std::string& path) override;
  Status GetChildren(const std::string& dir, std::vector<std::string>* names) override;
  Status ListDir(const std::string& dir, std::vector<DirEntry>* entries) override;
  bool FileExists(const std::string& path) override;
  Status FreeSpace(const std::string& path, uint64_t* bytes) override;
  Status GetFsSpace(const std::string& path, FsSpace* space) override;
  Status Preallocate(const std::string& path, uint64_t size) override;
  Status WriteFileAtomic(const std::string& path, std::string_view contents, mode_t mode) override;
  int64_t NowMicros() override;

 private:
  friend class CrashWritableFile;

  // A file made by NewWritableFile: where it is now, and its lengths.
  struct TrackedFile {
    std::string path;  // current name (a name in scratch_dir_ once removed)
    uint64_t size = 0;
    uint64_t synced = 0;
  };

  // One change of directory entries.
  struct Change {
    enum Kind { kCreateFile, kMakeDir, kRename, kRemove } kind;
    std::string from;   // kRename, kRemove: the name that went
    std::string to;     // kCreateFile, kMakeDir, kRename: the name that came
    std::string saved;  // kRemove: a link to the removed file in scratch_dir_
    uint64_t seq = 0;
    ino_t ino = 0;  // kRename, kRemove: the file's inode
  };

  // Counts an operation; fails it if the process is (now) dead.
  Status Begin(const char* name, const std::string& path);
  void Die();  // marks the Env dead; the first call runs the crash hook
  bool Durable(const std::string& dir, uint64_t seq) const;  // mu_ held
  // A name of inode `ino` as the undo has left things: `hint` if it is that
  // inode, else a copy kept aside when a name of it was removed. mu_ held.
  std::string FindInode(ino_t ino, const std::string& hint) const;
  void NoteSync(const std::string& dir, uint64_t seq);       // mu_ held

  const std::string scratch_dir_;
  const Semantics semantics_;
  std::atomic<bool> crashed_{false};
  std::atomic<int64_t> crash_after_{-1};
  std::atomic<int64_t> operations_{0};
  std::atomic<bool> record_operations_{false};
  std::function<void()> crash_hook_;
  std::once_flag crash_hook_once_;

  mutable std::mutex mu_;
  std::vector<std::string> operation_names_;  // when recorded
  uint64_t next_seq_ = 1;
  std::vector<Change> changes_;
  // The seq after which a directory's changes are not durable yet: changes
  // with a smaller seq are. Per directory (kPosix), or for all ("").
  std::map<std::string, uint64_t> synced_before_;
  std::vector<std::shared_ptr<TrackedFile>> files_;
  uint64_t saved_count_ = 0;
  bool dropped_ = false;
  std::set<ino_t> touched_inodes_;
};

}  // namespace costore::test
