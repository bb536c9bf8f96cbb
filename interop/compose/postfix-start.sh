#!/bin/sh
# Starts Postfix in the lab's "postfix" container as the ordinary mail server of
# posta.ordinaria.test: Maildir delivery for its domain, relay to the gestori found
# through the lab's DNS (MX records), TLS towards them when offered.
set -eu
net=$(ip -4 route show scope link | awk '{print $1; exit}')
mkdir -p /var/mail/lab
chown -R nobody:nogroup /var/mail/lab
postconf -e \
    "maillog_file = /dev/stdout" \
    "inet_interfaces = all" \
    "inet_protocols = ipv4" \
    "mynetworks = 127.0.0.0/8 $net" \
    "myhostname = mx.posta.ordinaria.test" \
    "mydomain = posta.ordinaria.test" \
    "mydestination =" \
    "local_transport = error:no local delivery in the lab" \
    "virtual_mailbox_domains = posta.ordinaria.test" \
    "virtual_mailbox_base = /var/mail/lab" \
    "virtual_mailbox_maps = static:ordinaria/" \
    "virtual_uid_maps = static:$(id -u nobody)" \
    "virtual_gid_maps = static:$(id -g nobody)" \
    "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination" \
    "smtp_tls_security_level = may" \
    "smtp_tls_CAfile = /lab/ca.pem" \
    "smtpd_tls_security_level = none" \
    "compatibility_level = 3.6" \
    "maximal_queue_lifetime = 1h" \
    "bounce_queue_lifetime = 1h" \
    "message_size_limit = 52428800" \
    "virtual_mailbox_limit = 0"
# No chroot: the resolver configuration Docker writes stays where Postfix reads it.
postconf -F '*/*/chroot = n'
exec postfix start-fg
