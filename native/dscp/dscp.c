/*
 * Minimal N-API addon for uftp-ts: the IP header's TOS byte (IPv4) / traffic class (IPv6) on a socket.
 * node:dgram has no setTOS, so src/net sets DSCP through this. MIT licensed.
 *
 *   setTos(fd, family, tos) -> 0 or errno     family 4: IP_TOS; 6: IPV6_TCLASS (and IP_TOS for v4-mapped)
 *   getTos(fd, family)      -> tos >= 0 or -errno
 *   interfaces()            -> [{name, family: 4|6, address, netmask, flags, scopeid}] in getifaddrs(3) order,
 *                              every interface (also those without carrier, which os.networkInterfaces() omits)
 */
#include <node_api.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <string.h>

static int get_ints(napi_env env, napi_callback_info info, size_t want, int32_t *out) {
  napi_value argv[3];
  size_t argc = 3;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "dscp: wrong number of arguments");
    return -1;
  }
  for (size_t i = 0; i < want; i++) {
    if (napi_get_value_int32(env, argv[i], &out[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "dscp: arguments must be integers");
      return -1;
    }
  }
  return 0;
}

static napi_value make_int(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

static napi_value SetTos(napi_env env, napi_callback_info info) {
  int32_t a[3];
  if (get_ints(env, info, 3, a) != 0) return NULL;
  int fd = a[0], family = a[1], tos = a[2] & 0xff;
  if (family == 6) {
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof tos) != 0) return make_int(env, errno);
    /* A dual-stack socket also sends IPv4 (v4-mapped): set its TOS too; not all sockets accept it. */
    (void)setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos);
    return make_int(env, 0);
  }
  if (setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos) != 0) return make_int(env, errno);
  return make_int(env, 0);
}

static napi_value GetTos(napi_env env, napi_callback_info info) {
  int32_t a[2];
  if (get_ints(env, info, 2, a) != 0) return NULL;
  int v = 0;
  socklen_t len = sizeof v;
  int rc = a[1] == 6 ? getsockopt(a[0], IPPROTO_IPV6, IPV6_TCLASS, &v, &len)
                     : getsockopt(a[0], IPPROTO_IP, IP_TOS, &v, &len);
  return make_int(env, rc == 0 ? v : -errno);
}

static void set_str(napi_env env, napi_value obj, const char *key, const char *val) {
  napi_value v;
  napi_create_string_utf8(env, val, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, key, v);
}

static void set_int(napi_env env, napi_value obj, const char *key, int64_t val) {
  napi_value v;
  napi_create_int64(env, val, &v);
  napi_set_named_property(env, obj, key, v);
}

static napi_value Interfaces(napi_env env, napi_callback_info info) {
  (void)info;
  struct ifaddrs *list = NULL;
  napi_value arr;
  napi_create_array(env, &arr);
  if (getifaddrs(&list) != 0) return arr;
  uint32_t n = 0;
  for (struct ifaddrs *i = list; i != NULL; i = i->ifa_next) {
    if (i->ifa_addr == NULL) continue;
    int fam = i->ifa_addr->sa_family;
    if (fam != AF_INET && fam != AF_INET6) continue;
    char addr[INET6_ADDRSTRLEN] = "", mask[INET6_ADDRSTRLEN] = "";
    int64_t scope = 0;
    if (fam == AF_INET) {
      inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, addr, sizeof addr);
      if (i->ifa_netmask) inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_netmask)->sin_addr, mask, sizeof mask);
    } else {
      struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)i->ifa_addr;
      inet_ntop(AF_INET6, &a6->sin6_addr, addr, sizeof addr);
      scope = a6->sin6_scope_id;
      if (i->ifa_netmask) inet_ntop(AF_INET6, &((struct sockaddr_in6 *)i->ifa_netmask)->sin6_addr, mask, sizeof mask);
    }
    napi_value o;
    napi_create_object(env, &o);
    set_str(env, o, "name", i->ifa_name);
    set_int(env, o, "family", fam == AF_INET ? 4 : 6);
    set_str(env, o, "address", addr);
    set_str(env, o, "netmask", mask);
    set_int(env, o, "flags", i->ifa_flags);
    set_int(env, o, "scopeid", scope);
    napi_set_element(env, arr, n++, o);
  }
  freeifaddrs(list);
  return arr;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"setTos", NULL, SetTos, NULL, NULL, NULL, napi_enumerable, NULL},
    {"getTos", NULL, GetTos, NULL, NULL, NULL, napi_enumerable, NULL},
    {"interfaces", NULL, Interfaces, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, 3, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
