#include "llmgw/net/dns_resolver.hpp"

#include <ares.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <mutex>
#include <stdexcept>

namespace llmgw::net {

std::string_view to_string(DnsOutcome outcome) noexcept {
  switch (outcome) {
    case DnsOutcome::ok:
      return "ok";
    case DnsOutcome::nxdomain:
      return "nxdomain";
    case DnsOutcome::no_records:
      return "no_records";
    case DnsOutcome::servfail:
      return "servfail";
    case DnsOutcome::refused:
      return "refused";
    case DnsOutcome::timeout:
      return "timeout";
    case DnsOutcome::unreachable:
      return "unreachable";
    case DnsOutcome::error:
      break;
  }
  return "error";
}

namespace {

namespace asio = boost::asio;

DnsOutcome outcome_of(int status) {
  switch (status) {
    case ARES_SUCCESS:
      return DnsOutcome::ok;
    case ARES_ENOTFOUND:
      return DnsOutcome::nxdomain;
    case ARES_ENODATA:
      return DnsOutcome::no_records;
    case ARES_ESERVFAIL:
      return DnsOutcome::servfail;
    case ARES_EREFUSED:
      return DnsOutcome::refused;
    case ARES_ETIMEOUT:
      return DnsOutcome::timeout;
    case ARES_ECONNREFUSED:
      return DnsOutcome::unreachable;
    default:
      return DnsOutcome::error;
  }
}

// Dropped queries (cancel, destruction) end with these; their callbacks are not called.
bool dropped(int status) {
  return status == ARES_ECANCELLED || status == ARES_EDESTRUCTION;
}

std::string address_text(const sockaddr* address) {
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (address->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    ares_inet_ntop(AF_INET, &v4->sin_addr, text.data(), text.size());
  } else if (address->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    ares_inet_ntop(AF_INET6, &v6->sin6_addr, text.data(), text.size());
  }
  return text.data();
}

std::string without_final_dot(std::string name) {
  if (name.ends_with('.')) {
    name.pop_back();
  }
  return name;
}

// c-ares is initialised once per process and never cleaned up (other channels may live on).
void init_library() {
  static std::once_flag once;
  static int status = ARES_SUCCESS;
  std::call_once(once, [] { status = ares_library_init(ARES_LIB_INIT_ALL); });
  if (status != ARES_SUCCESS) {
    throw std::runtime_error(std::string{"cannot initialise c-ares: "} + ares_strerror(status));
  }
}

}  // namespace

// The channel and what watches its sockets. Shared so that handlers still queued when the resolver
// is destroyed see it gone (they hold a weak_ptr) instead of touching freed memory.
struct DnsResolver::Impl : std::enable_shared_from_this<Impl> {
  // One socket c-ares asked to be watched.
  struct Watcher {
    Watcher(asio::io_context& io, ares_socket_t fd) : descriptor(io, fd) {}
    asio::posix::stream_descriptor descriptor;
    bool want_read = false;
    bool want_write = false;
    bool reading = false;  // a wait is pending
    bool writing = false;
  };

  // What a query's c-ares callback needs: where to post the answer, and whether it still may.
  template <typename Result>
  struct Query {
    std::weak_ptr<Impl> owner;
    std::uint64_t generation = 0;
    std::function<void(Result)> done;
  };

  explicit Impl(asio::io_context& context) : io(context), timer(context) {}

  ~Impl() {
    if (channel != nullptr) {
      ares_destroy(channel);  // releases every watched socket through on_socket_state
    }
  }

  void init(const DnsResolverOptions& options) {
    init_library();
    ares_options ares{};
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    ares.sock_state_cb = &Impl::on_socket_state;
    ares.sock_state_cb_data = this;
    // c-ares doubles the timeout at each round of tries: 2 tries of t and 2t fit in 3t.
    ares.timeout = std::max(50, static_cast<int>(options.timeout.count() / 3));
    ares.tries = 2;
    if (const int status = ares_init_options(&channel, &ares, mask); status != ARES_SUCCESS) {
      channel = nullptr;
      throw std::runtime_error(std::string{"cannot start the DNS resolver: "} +
                               ares_strerror(status));
    }
    if (!options.servers.empty()) {
      if (const int status = ares_set_servers_ports_csv(channel, options.servers.c_str());
          status != ARES_SUCCESS) {
        throw std::runtime_error("bad DNS server \"" + options.servers +
                                 "\": " + ares_strerror(status));
      }
    }
  }

  static void on_socket_state(void* data, ares_socket_t fd, int readable, int writable) {
    static_cast<Impl*>(data)->socket_state(fd, readable != 0, writable != 0);
  }

  void socket_state(ares_socket_t fd, bool readable, bool writable) {
    if (!readable && !writable) {
      // c-ares closes the socket right after this: stop watching it, without closing it.
      if (const auto it = watchers.find(fd); it != watchers.end()) {
        boost::system::error_code ignored;
        it->second->descriptor.cancel(ignored);
        (void)it->second->descriptor.release();
        watchers.erase(it);
      }
      return;
    }
    auto& watcher = watchers[fd];
    if (!watcher) {
      watcher = std::make_shared<Watcher>(io, fd);
    }
    watcher->want_read = readable;
    watcher->want_write = writable;
    arm(fd, watcher);
  }

  void arm(ares_socket_t fd, const std::shared_ptr<Watcher>& watcher) {
    if (watcher->want_read && !watcher->reading) {
      watcher->reading = true;
      watcher->descriptor.async_wait(
          asio::posix::stream_descriptor::wait_read,
          [owner = weak_from_this(), fd, watcher](const boost::system::error_code& ec) {
            watcher->reading = false;
            if (auto self = owner.lock(); self && !ec) {
              self->ready(fd, watcher, true);
            }
          });
    }
    if (watcher->want_write && !watcher->writing) {
      watcher->writing = true;
      watcher->descriptor.async_wait(
          asio::posix::stream_descriptor::wait_write,
          [owner = weak_from_this(), fd, watcher](const boost::system::error_code& ec) {
            watcher->writing = false;
            if (auto self = owner.lock(); self && !ec) {
              self->ready(fd, watcher, false);
            }
          });
    }
  }

  // The socket is readable (or writable): c-ares reads (writes) it, answers its queries, and may
  // close it or open others (socket_state) meanwhile.
  void ready(ares_socket_t fd, const std::shared_ptr<Watcher>& watcher, bool readable) {
    const auto current = watchers.find(fd);
    if (current == watchers.end() || current->second != watcher) {
      return;  // released (and perhaps reused for another socket) meanwhile
    }
    ares_process_fd(channel, readable ? fd : ARES_SOCKET_BAD, readable ? ARES_SOCKET_BAD : fd);
    if (const auto still = watchers.find(fd); still != watchers.end() && still->second == watcher) {
      arm(fd, watcher);
    }
    schedule_timeout();
  }

  // The timer runs c-ares' retries and timeouts: set to its next deadline after every step.
  void schedule_timeout() {
    timeval next{};
    if (ares_timeout(channel, nullptr, &next) == nullptr) {
      timer.cancel();  // no query in flight
      return;
    }
    timer.expires_after(std::chrono::seconds{next.tv_sec} +
                        std::chrono::microseconds{next.tv_usec});
    timer.async_wait([owner = weak_from_this()](const boost::system::error_code& ec) {
      if (auto self = owner.lock(); self && !ec) {
        ares_process_fd(self->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        self->schedule_timeout();
      }
    });
  }

  // Posts the answer, so a callback never runs inside the call that asked (c-ares answers some
  // queries at once: an address given as the name, an error) and never after cancel().
  template <typename Result>
  static void deliver(Query<Result>* query, Result result) {
    std::unique_ptr<Query<Result>> owned{query};
    auto self = owned->owner.lock();
    if (!self) {
      return;
    }
    asio::post(self->io, [owner = owned->owner, generation = owned->generation,
                          done = std::move(owned->done), result = std::move(result)]() mutable {
      if (auto alive = owner.lock(); alive && alive->generation == generation) {
        done(std::move(result));
      }
    });
  }

  static void on_addresses(void* arg, int status, int /*timeouts*/, ares_addrinfo* info) {
    auto* query = static_cast<Query<DnsAddresses>*>(arg);
    std::unique_ptr<ares_addrinfo, decltype(&ares_freeaddrinfo)> owned_info{info,
                                                                            &ares_freeaddrinfo};
    if (dropped(status)) {
      delete query;
      return;
    }
    DnsAddresses result;
    result.outcome = outcome_of(status);
    if (status != ARES_SUCCESS) {
      result.detail = ares_strerror(status);
    }
    for (auto* node = info != nullptr ? info->nodes : nullptr; node != nullptr;
         node = node->ai_next) {
      if (std::string text = address_text(node->ai_addr); !text.empty()) {
        result.addresses.push_back(std::move(text));
      }
    }
    std::sort(result.addresses.begin(), result.addresses.end());
    result.addresses.erase(std::unique(result.addresses.begin(), result.addresses.end()),
                           result.addresses.end());
    if (result.outcome == DnsOutcome::ok && result.addresses.empty()) {
      result.outcome = DnsOutcome::no_records;
    }
    deliver(query, std::move(result));
  }

  static void on_srv(void* arg, int status, int /*timeouts*/, unsigned char* answer, int length) {
    auto* query = static_cast<Query<DnsSrvRecords>*>(arg);
    if (dropped(status)) {
      delete query;
      return;
    }
    DnsSrvRecords result;
    if (status == ARES_SUCCESS) {
      ares_srv_reply* replies = nullptr;
      status = ares_parse_srv_reply(answer, length, &replies);
      for (auto* reply = replies; reply != nullptr; reply = reply->next) {
        result.records.push_back(
            {without_final_dot(reply->host), reply->port, reply->priority, reply->weight});
      }
      if (replies != nullptr) {
        ares_free_data(replies);
      }
    }
    result.outcome = outcome_of(status);
    if (status != ARES_SUCCESS) {
      result.detail = ares_strerror(status);
    }
    deliver(query, std::move(result));
  }

  asio::io_context& io;
  asio::steady_timer timer;
  ares_channel channel = nullptr;
  std::map<ares_socket_t, std::shared_ptr<Watcher>> watchers;
  std::uint64_t generation = 0;  // bumped by cancel(): answers of older queries are dropped
};

DnsResolver::DnsResolver(asio::io_context& io, const DnsResolverOptions& options)
    : impl_(std::make_shared<Impl>(io)) {
  impl_->init(options);
}

DnsResolver::~DnsResolver() {
  impl_->timer.cancel();
}

void DnsResolver::resolve_addresses(const std::string& name,
                                    std::function<void(DnsAddresses)> done) {
  auto* query = new Impl::Query<DnsAddresses>{impl_, impl_->generation, std::move(done)};
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = ARES_AI_NOSORT;  // sorting connects UDP sockets to every address: not needed
  ares_getaddrinfo(impl_->channel, name.c_str(), nullptr, &hints, &Impl::on_addresses, query);
  impl_->schedule_timeout();
}

void DnsResolver::resolve_srv(const std::string& name, std::function<void(DnsSrvRecords)> done) {
  auto* query = new Impl::Query<DnsSrvRecords>{impl_, impl_->generation, std::move(done)};
  ares_search(impl_->channel, name.c_str(), ns_c_in, ns_t_srv, &Impl::on_srv, query);
  impl_->schedule_timeout();
}

void DnsResolver::cancel() {
  ++impl_->generation;
  ares_cancel(impl_->channel);
  impl_->schedule_timeout();
}

}  // namespace llmgw::net
