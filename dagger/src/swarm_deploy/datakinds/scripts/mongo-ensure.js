const roles = names.map((name) => ({role: "readWrite", db: name}));
const password = secret("mongo_password");
if (home.getUser(role)) { home.updateUser(role, {pwd: password, roles: roles}); }
else { home.createUser({user: role, pwd: password, roles: roles}); }
print(`mongo user ${role}: readWrite on ${names.join(", ")}`);
