#!/usr/bin/perl
# Runs a plan of statements through Perl DBI and prints what it saw, as JSON.
#
# Why: Perl backends use DBI with DBD::MariaDB or DBD::mysql (COMETQL_DBD=MariaDB|mysql). Their
# defaults: `?` placeholders that the driver fills in and escapes itself (client-side, COM_QUERY).
# DBD::MariaDB speaks UTF-8 by default; DBD::mysql needs mysql_enable_utf8mb4, as its manual
# tells users to set. Settings come from COMETQL_HOST/PORT/USER/PASSWORD/DB; the plan is a
# JSON list on stdin: [{"sql": "...", "params": [...]}, ...]. Output: {"connect_error":
# null|{code,message,sqlstate}, "results": [...]} where each result is
# {"affected","insert_id","columns","rows"} or {"error": {code,message,sqlstate}}.
# Debian: libdbd-mariadb-perl, libdbd-mysql-perl (JSON::PP is in Perl's core).
use strict;
use warnings;
use DBI;
use JSON::PP;

my $dbd = $ENV{COMETQL_DBD} // 'MariaDB';
my $prefix = lc $dbd;  # driver attributes: mariadb_insertid / mysql_insertid
my $json = JSON::PP->new->utf8->canonical;
my $plan = $json->decode(do { local $/; <STDIN> });

sub as_error {
    my ($h) = @_;
    return { code => $h->err + 0, message => $h->errstr, sqlstate => $h->state };
}

my $dsn = "DBI:$dbd:database=$ENV{COMETQL_DB};host=$ENV{COMETQL_HOST};port=$ENV{COMETQL_PORT}";
my %attrs = (RaiseError => 0, PrintError => 0, AutoCommit => 1, "${prefix}_connect_timeout" => 5);
$attrs{mysql_enable_utf8mb4} = 1 if $dbd eq 'mysql';
my $dbh = DBI->connect($dsn, $ENV{COMETQL_USER}, $ENV{COMETQL_PASSWORD}, \%attrs);
if (!$dbh) {
    print $json->encode({ connect_error => { code => $DBI::err + 0, message => $DBI::errstr,
                                             sqlstate => $DBI::state }, results => [] }), "\n";
    exit 0;
}

my @results;
for my $step (@$plan) {
    my $sth = $dbh->prepare($step->{sql});
    my $rv = $sth && $sth->execute(@{ $step->{params} // [] });
    if (!$rv) {
        push @results, { error => as_error($sth // $dbh) };
        next;
    }
    my %result = (affected => $rv + 0, insert_id => ($sth->{"${prefix}_insertid"} // 0) + 0,
                  columns => undef, rows => undef);
    if ($sth->{NUM_OF_FIELDS}) {
        $result{columns} = $sth->{NAME};
        $result{rows} = $sth->fetchall_arrayref;
    }
    push @results, \%result;
}
$dbh->disconnect;
print $json->encode({ connect_error => undef, results => \@results }), "\n";
