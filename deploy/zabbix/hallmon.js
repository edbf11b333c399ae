// hallmon's Zabbix webhook (Zabbix 6.0, Duktape): one POST per problem, recovery and
// update to hallmon's POST /api/v1/alerts/zabbix. Any answer but 200/202 throws, so
// Zabbix's alerter retries (max_attempts) and the action log shows why.
var p = JSON.parse(value);

function clean(v) {
    // a macro Zabbix could not resolve stays literal ("{EVENT.RECOVERY.ID}")
    return (typeof v !== 'string' || /^\{[A-Z0-9_.]+\}$/.test(v)) ? '' : v;
}

function isoTime(date, time) {
    // {EVENT.DATE} {EVENT.TIME} are the server's local time: 2026.12.07 15:19:48
    var d = /^(\d{4})\.(\d{2})\.(\d{2})$/.exec(clean(date));
    var t = /^(\d{2}):(\d{2}):(\d{2})$/.exec(clean(time));
    if (!d || !t) {
        return '';
    }
    return new Date(+d[1], +d[2] - 1, +d[3], +t[1], +t[2], +t[3]).toISOString();
}

var url = clean(p.hallmon_url).replace(/\/+$/, '');
if (!/^https?:\/\//.test(url)) {
    throw 'hallmon_url: expected http(s)://host:port of hallmon, got "' + p.hallmon_url + '"';
}
if (!clean(p.hallmon_token) || p.hallmon_token === '<HALLMON TOKEN>') {
    throw 'hallmon_token: set an API token with the alerts:write scope';
}

var kind = clean(p.event_update_status) === '1' ? 'update' : (clean(p.event_value) === '0' ? 'recovery' : 'problem');
var tags = [];
try {
    tags = JSON.parse(clean(p.event_tags_json) || '[]');
} catch (error) {
    Zabbix.log(3, '[hallmon] event tags are not JSON: ' + p.event_tags_json);
}
var groups = clean(p.host_groups) ? clean(p.host_groups).split(', ') : [];

var body = {
    version: '1',
    instance: clean(p.instance) || 'zabbix',
    kind: kind,
    event: {
        id: clean(p.event_id),
        name: clean(p.event_name),
        severity: parseInt(clean(p.event_nseverity) || '0', 10),
        time: isoTime(p.event_date, p.event_time),
        tags: tags
    },
    host: {name: clean(p.host_name), groups: groups},
    trigger: {id: clean(p.trigger_id)}
};
if (kind === 'recovery') {
    body.recovery = {id: clean(p.event_recovery_id), time: isoTime(p.event_recovery_date, p.event_recovery_time)};
}
if (kind === 'update') {
    var action = clean(p.event_update_action);
    body.update = {
        user: clean(p.user_fullname),
        action: action,
        message: clean(p.event_update_message),
        acknowledged: /(^|, )acknowledged/.test(action),
        time: isoTime(p.event_update_date, p.event_update_time)
    };
}

var req = new HttpRequest();
req.addHeader('Content-Type: application/json');
req.addHeader('Authorization: Bearer ' + p.hallmon_token);
var answer = req.post(url + '/api/v1/alerts/zabbix', JSON.stringify(body));
var status = req.getStatus();
if (status !== 200 && status !== 202) {
    throw 'hallmon answered ' + status + ': ' + String(answer).substring(0, 300);
}
return 'OK';
