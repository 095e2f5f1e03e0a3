// `spikeflow keygen -o PREFIX`: a CURVE key pair for the publisher (or a client) with libzmq's
// zmq_curve_keypair, as Z85 text: PREFIX.key_secret (mode 0600) and PREFIX.key (public, 0644).
// The server's secret goes to publish.curve_secret_key_file, its public key to every client;
// a client's public key goes into publish.curve_clients_dir. README "Who may talk to it".
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <zmq.h>

#include "cli/commands.h"
#include "pipeline/zmq_publisher.h"

namespace spikeflow::cli {

namespace {

/// Writes text + "\n" to path with the given mode; an existing file is an error unless force.
void write_key(const std::string& path, const std::string& text, mode_t mode, bool force) {
  const int flags = O_WRONLY | O_CREAT | (force ? O_TRUNC : O_EXCL);
  const int fd = ::open(path.c_str(), flags, mode);
  if (fd < 0) {
    throw std::runtime_error(fmt::format("keygen: cannot create '{}': {}{}", path,
                                         std::strerror(errno),
                                         errno == EEXIST ? " (pass --force to overwrite)" : ""));
  }
  const std::string line = text + "\n";
  // fchmod: O_CREAT's mode is filtered by the umask, and an overwritten file keeps its old mode.
  const bool ok = ::fchmod(fd, mode) == 0 &&
                  ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  const int err = errno;
  if (::close(fd) != 0 || !ok) {
    throw std::runtime_error(
        fmt::format("keygen: cannot write '{}': {}", path, std::strerror(ok ? errno : err)));
  }
}

}  // namespace

Command add_keygen(CLI::App& app) {
  auto prefix = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  app.add_option("-o,--output", *prefix,
                 "writes PREFIX.key_secret (secret, mode 0600) and PREFIX.key (public)")
      ->required();
  app.add_flag("--force", *force, "overwrite existing key files");
  return [prefix, force] {
    if (!pipeline::curve_available()) {
      throw std::runtime_error(
          "keygen: this libzmq was built without CURVE (zmq_has(\"curve\") is false)");
    }
    char public_key[41] = {}, secret_key[41] = {};
    if (zmq_curve_keypair(public_key, secret_key) != 0) {
      throw std::runtime_error(
          fmt::format("keygen: zmq_curve_keypair failed: {}", zmq_strerror(zmq_errno())));
    }
    const std::string secret_path = *prefix + ".key_secret", public_path = *prefix + ".key";
    write_key(secret_path, secret_key, 0600, *force);
    write_key(public_path, public_key, 0644, *force);
    fmt::print(
        "wrote {} (secret: keep it on this host) and {} (public: give it to the other side)\n",
        secret_path, public_path);
    return 0;
  };
}

}  // namespace spikeflow::cli
