"""Fleets on a real etcd: the Etcd source, ACK/NACK statuses, fleet status and push."""
